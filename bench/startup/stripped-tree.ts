// Builds what "ship JavaScript instead of TypeScript" would give the sidecar image: a copy of
// api/src, lib/src and sidecar/src with types stripped ahead of time (node:module stripTypeScriptTypes, the
// same transform Node applies at every start) and relative `.ts` imports pointing at `.js`, next
// to the repository's node_modules. bench/startup times the sidecar from it; nothing ships it.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';

const IMPORT_TS = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+?)\.ts\2/g;

function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    if (entry.isDirectory()) {
      copyTree(src, join(to, entry.name));
    } else if (entry.name.endsWith('.ts')) {
      const js = stripTypeScriptTypes(readFileSync(src, 'utf8'), { mode: 'strip' }).replace(IMPORT_TS, '$1$2$3.js$2');
      writeFileSync(join(to, entry.name.replace(/\.ts$/, '.js')), js);
    } else {
      copyFileSync(src, join(to, entry.name));
    }
  }
}

/** Returns the path of main.js in a stripped copy under `out`. */
export function buildStrippedTree(root: string, out: string): string {
  copyTree(join(root, 'api', 'src'), join(out, 'api', 'src'));
  copyTree(join(root, 'lib', 'src'), join(out, 'lib', 'src'));
  copyTree(join(root, 'sidecar', 'src'), join(out, 'sidecar', 'src'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
  writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'sluice-stripped', version: pkg.version, type: 'module', private: true }));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  return join(out, 'sidecar', 'src', 'main.js');
}
