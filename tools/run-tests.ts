// `make test`: runs every runner (typecheck, lint, Rego format/check/test, jest), prints each
// one's result as it finishes and ends with a single `tests: N passed, N failed` line summed over
// all of them. A failing runner fails the whole run; later runners still run so one red step
// does not hide another.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Outcome {
  passed: number;
  failed: number;
  note?: string;
}

interface Step {
  name: string;
  run(): Outcome;
}

const root = join(import.meta.dirname, '..');
const opa = join(root, '.tools/bin/opa');
const node = process.execPath;
const scratch = mkdtempSync(join(tmpdir(), 'sluice-test-'));
const MIN_REGO_COVERAGE = 90;

function sh(cmd: string, args: string[], opts: { capture?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const res = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (res.error) throw res.error;
  return { code: res.status ?? 1, stdout: res.stdout ?? '' };
}

/** A step that is one check: passes when the command exits 0. */
function check(name: string, cmd: string, args: string[]): Step {
  return { name, run: () => (sh(cmd, args).code === 0 ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 }) };
}

interface OpaTestResult {
  fail?: boolean;
  error?: unknown;
  skip?: boolean;
}

const regoTests: Step = {
  name: 'rego: opa test --coverage',
  run() {
    const tests = sh(opa, ['test', '--format', 'json', 'policies/rego', 'policies/data'], { capture: true });
    let results: OpaTestResult[];
    try {
      results = JSON.parse(tests.stdout || '[]') as OpaTestResult[];
    } catch {
      return { passed: 0, failed: 1, note: 'could not read opa test output' };
    }
    const failed = results.filter((r) => r.fail || r.error).length;
    const passed = results.filter((r) => !r.fail && !r.error && !r.skip).length;
    if (failed) sh(opa, ['test', '-v', 'policies/rego', 'policies/data']);
    const cov = sh(opa, ['test', '--coverage', '--format', 'json', 'policies/rego', 'policies/data'], { capture: true });
    const coverage = (JSON.parse(cov.stdout) as { coverage: number }).coverage;
    const covOk = coverage >= MIN_REGO_COVERAGE;
    return {
      passed: passed + (covOk ? 1 : 0),
      failed: failed + (covOk ? 0 : 1),
      note: `coverage ${coverage.toFixed(1)}% (minimum ${MIN_REGO_COVERAGE}%)`,
    };
  },
};

interface JestSummary {
  numPassedTests: number;
  numFailedTests: number;
  numRuntimeErrorTestSuites: number;
  success: boolean;
}

const jest: Step = {
  name: 'jest',
  run() {
    const out = join(scratch, 'jest.json');
    const res = sh(node, ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', 'node_modules/jest/bin/jest.js', '--ci', '--json', `--outputFile=${out}`, ...process.argv.slice(2)]);
    let summary: JestSummary;
    try {
      summary = JSON.parse(readFileSync(out, 'utf8')) as JestSummary;
    } catch {
      return { passed: 0, failed: 1, note: `jest exited ${res.code} without a report` };
    }
    // A suite that fails to load has no tests to count; count it so it cannot pass silently.
    const failed = summary.numFailedTests + summary.numRuntimeErrorTestSuites;
    return { passed: summary.numPassedTests, failed: failed || (res.code === 0 ? 0 : 1) };
  },
};

const steps: Step[] = [
  check('typecheck (tsc --noEmit)', node, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']),
  check('lint (eslint)', node, ['node_modules/eslint/bin/eslint.js', '--max-warnings', '0', '.']),
  check('rego: opa fmt --fail', opa, ['fmt', '--fail', '-l', 'policies/rego']),
  check('rego: opa check --strict', opa, ['check', '--strict', '--schema', 'api/schemas', 'policies/rego', 'policies/data']),
  regoTests,
  jest,
];

const onlyJest = process.env.SLUICE_TEST_ONLY === 'jest';
let passed = 0;
let failed = 0;
const lines: string[] = [];
for (const step of onlyJest ? [jest] : steps) {
  console.log(`\n=== ${step.name}`);
  let outcome: Outcome;
  try {
    outcome = step.run();
  } catch (err) {
    outcome = { passed: 0, failed: 1, note: String(err) };
  }
  passed += outcome.passed;
  failed += outcome.failed;
  lines.push(`${outcome.failed ? 'FAIL' : 'ok  '} ${step.name}: ${outcome.passed} passed, ${outcome.failed} failed${outcome.note ? ` — ${outcome.note}` : ''}`);
}
rmSync(scratch, { recursive: true, force: true });
console.log(`\n${lines.join('\n')}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
