// Writes a JavaScript twin beside every TypeScript module of a tree: the types stripped the way
// Node strips them at every start (node:module stripTypeScriptTypes, whitespace in place of types,
// so line and column numbers of a stack trace match the .ts source) and relative `.ts` imports
// pointing at the `.js` twins. The sidecar image runs its .js tree: Node then never loads its
// TypeScript stripper (amaro and its WASM: ~30 MB of RSS and ~300 ms of CPU at every sidecar
// start, bench/startup). The .ts files stay (the node agent and the webhook run them).
// Self-contained (node: builtins only): the Containerfile runs it inside the image build.
//   node charts/images/strip-types.ts DIR [DIR ...]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';

/** Relative module specifiers ending in .ts, in static imports/exports and import() calls. */
const RELATIVE_TS_IMPORT = /((?:\bfrom|\bimport)\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+?)\.ts\2/g;

/** One module's JavaScript: types stripped, relative .ts imports renamed .js. */
export function toJavaScript(source: string): string {
  return stripTypeScriptTypes(source, { mode: 'strip' }).replace(RELATIVE_TS_IMPORT, '$1$2$3.js$2');
}

/** Writes x.js beside every x.ts under `dir` (declaration files skipped); returns how many. */
export function stripTree(dir: string): number {
  let written = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) written += stripTree(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      writeFileSync(path.replace(/\.ts$/, '.js'), toJavaScript(readFileSync(path, 'utf8')));
      written++;
    }
  }
  return written;
}

if (import.meta.main) {
  const dirs = process.argv.slice(2);
  if (!dirs.length) {
    process.stderr.write('usage: node strip-types.ts DIR [DIR ...]\n');
    process.exit(2);
  }
  for (const d of dirs) process.stdout.write(`${d}: ${stripTree(d)} modules\n`);
}
