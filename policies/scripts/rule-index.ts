// Prints the rule index of a built bundle (rules.json): for each decision code, the rule in the
// original sources that names it, with file:line. `make policy` writes it beside bundle.tar.gz so
// `kubectl sluice policy explain` can point at the lines a reader edits (the Rego copies inside a
// WASM bundle are rewritten by opa build). The index carries the bundle's revision; explain uses it
// only for a bundle of that revision. Reads files, writes stdout, changes nothing.
//
//   node policies/scripts/rule-index.ts BUNDLE.tar.gz REGO_DIR... > rules.json
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { buildRuleIndex } from '../../cli/src/policy/rule-index.ts';

const [bundlePath, ...dirs] = process.argv.slice(2);
if (!bundlePath || !dirs.length) {
  process.stderr.write('usage: rule-index.ts BUNDLE.tar.gz REGO_DIR...\n');
  process.exit(2);
}
const repo = join(import.meta.dirname, '..', '..');
const { revision } = await readBundle(bundlePath);
const files = dirs.flatMap((dir) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.rego'))
    .map((f) => ({ path: relative(repo, join(dir, f)), text: readFileSync(join(dir, f), 'utf8') })),
);
process.stdout.write(`${JSON.stringify(buildRuleIndex(files, revision, 'sources'))}\n`);
