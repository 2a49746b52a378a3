// Finds the rule index for a bundle: rules.json beside it when it was built for the bundle's
// revision (`make policy`; the release puts it beside the CLI's default bundle), else a scan of the
// Rego copies the bundle itself stores (any bundle built by `opa build` carries them). Reads files only.
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Parser } from 'tar';
import { buildRuleIndex, parseRuleIndex, RULE_INDEX_FILE } from './rule-index.ts';
import type { RegoFile, RuleIndex } from './rule-index.ts';

const MAX_REGO_BYTES = 8 * 1024 * 1024;

/** rules.json candidates: in a bundle directory, then beside the bundle file or directory. */
function indexCandidates(bundlePath: string): string[] {
  const isDir = existsSync(bundlePath) && statSync(bundlePath).isDirectory();
  return [...(isDir ? [join(bundlePath, RULE_INDEX_FILE)] : []), join(dirname(bundlePath), RULE_INDEX_FILE)];
}

async function regoInTarball(path: string): Promise<RegoFile[]> {
  const files: RegoFile[] = [];
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onReadEntry: (entry) => {
        const name = entry.path.replace(/^(\.?\/)+/, '');
        if (entry.type !== 'File' || !name.endsWith('.rego')) {
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => {
          total += c.length;
          if (total > MAX_REGO_BYTES) reject(new Error(`${path}: Rego sources exceed ${MAX_REGO_BYTES} bytes`));
          else chunks.push(c);
        });
        entry.on('end', () => files.push({ path: name, text: Buffer.concat(chunks).toString('utf8') }));
      },
    });
    const input = createReadStream(path);
    input.on('error', reject);
    parser.on('error', reject);
    parser.on('end', resolve);
    input.pipe(parser);
  });
  return files;
}

function regoInDirectory(dir: string): RegoFile[] {
  const out: RegoFile[] = [];
  const visit = (d: string, depth: number): void => {
    if (depth > 16) return;
    for (const name of readdirSync(d).sort()) {
      if (depth === 0 && name.startsWith('..')) continue;
      const p = join(d, name);
      const info = statSync(p, { throwIfNoEntry: false });
      if (info?.isDirectory()) visit(p, depth + 1);
      else if (info?.isFile() && name.endsWith('.rego')) out.push({ path: relative(dir, p), text: readFileSync(p, 'utf8') });
    }
  };
  visit(dir, 0);
  return out;
}

/** The Rego copies a bundle (tar.gz or directory) stores. */
export async function regoInBundle(bundlePath: string): Promise<RegoFile[]> {
  if (statSync(bundlePath).isDirectory()) {
    const archive = join(bundlePath, 'bundle.tar.gz');
    return existsSync(archive) ? regoInTarball(archive) : regoInDirectory(bundlePath);
  }
  return regoInTarball(bundlePath);
}

/**
 * Rules whose line no longer holds their code in the sources beside a checkout's rules.json
 * (policies/build/rules.json → the repository): edited since `make policy`.
 */
export function driftedRules(index: RuleIndex & { file?: string }, rules: readonly { file: string; line: number; code: string }[]): string[] {
  if (!index.file || index.from !== 'sources') return [];
  const root = join(dirname(index.file), '..', '..');
  return rules
    .filter((r) => {
      const source = join(root, r.file);
      if (!existsSync(source)) return false;
      return !(readFileSync(source, 'utf8').split('\n')[r.line - 1] ?? '').includes(`"${r.code}"`);
    })
    .map((r) => `${r.file}:${r.line}`);
}

/** The rule index for a bundle of this revision; `none` only when the bundle stores no Rego either. */
export async function ruleIndexFor(bundlePath: string, revision: string): Promise<(RuleIndex & { file?: string }) | undefined> {
  for (const candidate of indexCandidates(bundlePath)) {
    if (!existsSync(candidate)) continue;
    const index = parseRuleIndex(readFileSync(candidate, 'utf8'));
    if (index && index.revision === revision && revision !== '') return { ...index, file: candidate };
  }
  const files = await regoInBundle(bundlePath).catch(() => []);
  if (!files.length) return undefined;
  return buildRuleIndex(files, revision, 'bundle');
}
