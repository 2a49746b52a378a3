// Builds the sidecar's JavaScript tree as the image ships it (charts/images/strip-types.ts: a .js
// twin of every module, relative imports pointing at the twins) in a scratch directory next to
// the repository's node_modules. bench/startup times the sidecar from it next to the .ts tree.
import { cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripTree } from '../../charts/images/strip-types.ts';

/** Returns the path of main.js in a stripped copy under `out`. */
export function buildStrippedTree(root: string, out: string): string {
  for (const d of ['api/src', 'lib/src', 'sidecar/src']) {
    cpSync(join(root, d), join(out, d), { recursive: true, filter: (src) => !/\/(test|testdata|demo)(\/|$)/.test(src.slice(root.length)) });
    stripTree(join(out, d));
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
  writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'sluice-stripped', version: pkg.version, type: 'module', private: true }));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  return join(out, 'sidecar', 'src', 'main.js');
}
