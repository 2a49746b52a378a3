// The import boundaries between sluice's top-level areas, as data and one pure check, shared by the
// lint rule `sluice/boundaries` (eslint.config.js) and `node tools/import-graph.ts`. An import
// that crosses a boundary fails lint unless it is on the allow-list below, where each entry names
// the issue-22 step that removes it: the list may only shrink. Never import sluice code here (the
// lint config loads this file before anything is type-checked).

/** The area of a repository-relative path: its first two segments (`sidecar/src`, `e2e/support`),
 *  a root file `.`. */
export function areaOf(path: string): string {
  const s = path.split('/');
  if (s.length === 1) return '.';
  if (s.length === 2) return s[0]!;
  return `${s[0]}/${s[1]}`;
}

/** Code that ships in an image or the CLI binary. */
const PRODUCTION = ['api/src/', 'lib/src/', 'sidecar/src/', 'webhook/src/', 'cli/src/', 'cli/bin/', 'cni/src/', 'charts/src/'];

/** Test code: suites, their helpers and fixtures, the e2e harness, benchmarks, golden cases. */
export function isTestCode(path: string): boolean {
  return (
    /(^|\/)(test|testdata)\//.test(path) ||
    /\.test\.ts$/.test(path) ||
    path.startsWith('e2e/') ||
    path.startsWith('testkit/') ||
    path.startsWith('bench/') ||
    path.startsWith('policies/cases/')
  );
}

const isProduction = (path: string) => PRODUCTION.some((p) => path.startsWith(p));

interface Rule {
  readonly from: string;
  /** path prefixes this area may not import (besides test code, which no production code imports) */
  readonly never: readonly string[];
  readonly why: string;
}

/** What each production area may not import. api/src imports nothing of ours at all. */
const RULES: readonly Rule[] = [
  { from: 'api/src/', never: [''], why: 'api/ holds the shared contracts and imports nothing of sluice' },
  { from: 'lib/src/', never: ['sidecar/', 'webhook/', 'cli/', 'cni/', 'charts/', 'demo/'], why: 'lib/ is the code the sidecar and the CLI share: it imports only api/ and itself' },
  { from: 'sidecar/src/', never: ['webhook/', 'cli/', 'cni/', 'charts/', 'demo/'], why: 'the sidecar ships alone: it imports only api/, lib/ and itself' },
  { from: 'webhook/src/', never: ['sidecar/', 'lib/', 'cli/', 'cni/', 'charts/', 'demo/'], why: 'the webhook ships alone (its image holds api/src and webhook/src): it imports only api/ and itself' },
  ...['cli/src/', 'cli/bin/'].map((from) => ({ from, never: ['sidecar/', 'webhook/', 'cni/', 'charts/', 'demo/'], why: 'the CLI imports only api/, lib/ and itself (code shared with the sidecar belongs in lib/)' })),
  { from: 'cni/src/', never: ['sidecar/', 'webhook/', 'cli/', 'charts/', 'demo/'], why: 'the CNI plugin imports only api/, lib/ and itself (the interception settings and rules it shares with the sidecar are in lib/src/interception)' },
];

/** Tests of one component do not reach into another component's tests (shared helpers go to testkit/). */
const TEST_FOLDERS = ['api/test/', 'sidecar/test/', 'webhook/test/', 'cli/test/', 'cni/test/', 'charts/test/', 'policies/test/'];
/** `from` of an allow-list entry that stands for any of TEST_FOLDERS (never production code). */
export const TESTS = '<component tests>';

export interface AllowedLeak {
  /** the importer: a path prefix, or TESTS for any component's tests */
  readonly from: string;
  /** the imported file */
  readonly to: string;
  /** the work that removes it */
  readonly step: string;
}

/**
 * The leaks that exist today. Each entry: importer (a path prefix) → imported file, and the step
 * whose work removes it. Adding an entry needs a reason in review; removing one is the goal.
 * Empty since issue 22 (the last four, CNI → sidecar interception, went to lib/src/interception).
 */
export const ALLOWED_LEAKS: readonly AllowedLeak[] = [];

/** Whether an allow-list entry's `from` covers the importing file. */
export function allowListMatches(entryFrom: string, from: string): boolean {
  return entryFrom === TESTS ? TEST_FOLDERS.some((t) => from.startsWith(t)) : from.startsWith(entryFrom);
}

/** Why importing `to` from `from` (repository-relative paths) crosses a boundary, or undefined
 *  (also when the allow-list, ALLOWED_LEAKS unless `allowList` is given, lets it through, unless
 *  `ignoreAllowList`). */
export function boundaryViolation(
  from: string,
  to: string,
  opts: { readonly ignoreAllowList?: boolean; readonly allowList?: readonly AllowedLeak[] } = {},
): string | undefined {
  if (areaOf(from) === areaOf(to)) return undefined;
  const allowed = () =>
    !opts.ignoreAllowList &&
    (opts.allowList ?? ALLOWED_LEAKS).some((a) => allowListMatches(a.from, from) && to === a.to);
  if (isProduction(from) && isTestCode(to)) {
    return allowed() ? undefined : `production code (${areaOf(from)}) imports test code (${to})`;
  }
  const rule = RULES.find((r) => from.startsWith(r.from));
  if (rule?.never.some((p) => to.startsWith(p)) && !(rule.from === 'api/src/' && to.startsWith('api/src/'))) {
    return allowed() ? undefined : `${areaOf(from)} may not import ${to}: ${rule.why}`;
  }
  const fromTests = TEST_FOLDERS.find((t) => from.startsWith(t));
  const toTests = TEST_FOLDERS.find((t) => to.startsWith(t));
  if (fromTests && toTests && fromTests !== toTests) {
    return allowed() ? undefined : `${fromTests} imports ${to} from another component's tests: shared test helpers belong in one place (testkit/)`;
  }
  return undefined;
}
