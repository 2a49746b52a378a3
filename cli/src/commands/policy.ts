// `kubectl sluice policy eval|test|explain`: evaluate an input with the same WASM engine the sidecar
// runs, run the Rego unit tests with the pinned OPA, and explain a recorded audit event.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { PolicyInput, SchemaError, decisionAction, parseOrThrow } from '../../../api/src/index.ts';
import { BundleError, readBundle } from '../../../sidecar/src/policy/bundle.ts';
import { PolicyEngine } from '../../../sidecar/src/policy/engine.ts';
import { CliError, EXIT_FAILED } from '../errors.ts';
import { explainCommand } from '../policy/explain-command.ts';
import type { ExplainFlags } from '../policy/explain-command.ts';
import type { Io } from '../program.ts';
import { addSourceOptions } from './replay.ts';

// Where the defaults live. From a checkout: the repository (policies/, .tools/bin/opa). From a
// release bundle (SLUICE_BUILD_KIND is defined at bundle time): beside the executable, where the
// npm package and the krew archive put the default policy as policy/bundle.tar.gz.
const bundled = process.env.SLUICE_BUILD_KIND !== undefined;
const repoRoot = bundled ? undefined : join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
function beside(): string {
  const self = process.env.SLUICE_BUILD_KIND === 'sea' ? process.execPath : (process.argv[1] ?? process.execPath);
  try {
    return dirname(realpathSync(self));
  } catch {
    return dirname(self);
  }
}
const DEFAULT_BUNDLE = process.env.SLUICE_BUNDLE ?? (repoRoot ? join(repoRoot, 'policies', 'build', 'bundle.tar.gz') : join(beside(), 'policy', 'bundle.tar.gz'));
const DEFAULT_POLICY_DIR = repoRoot ? join(repoRoot, 'policies') : 'policies';

function readInput(file: string): unknown {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read input ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`input ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function evalCommand(opts: { input: string; bundle: string }, io: Io): Promise<void> {
  let input: PolicyInput;
  try {
    input = parseOrThrow(PolicyInput, readInput(opts.input), `input ${opts.input} does not match the policy input schema`);
  } catch (err) {
    if (err instanceof SchemaError) throw new CliError(err.message);
    throw err;
  }
  const engine = new PolicyEngine();
  try {
    await engine.load(await readBundle(opts.bundle));
  } catch (err) {
    if (err instanceof BundleError) throw new CliError(`${err.message} (${err.code}); run \`make policy\` to build it`, EXIT_FAILED);
    throw err;
  }
  const { decision, revision, fault } = engine.evaluate(input);
  const out = { action: decisionAction(decision), revision, ...(fault ? { fault } : {}), decision };
  io.out(`${JSON.stringify(out, null, 2)}\n`);
}

function findOpa(): string {
  const local = repoRoot ? join(repoRoot, '.tools', 'bin', 'opa') : undefined;
  return process.env.SLUICE_OPA ?? (local && existsSync(local) ? local : 'opa');
}

export function testCommand(opts: { dir: string; verbose?: boolean }, io: Io): void {
  const paths = [join(opts.dir, 'rego'), join(opts.dir, 'data')].filter((p) => existsSync(p));
  if (!paths.length) throw new CliError(`no rego/ or data/ under ${opts.dir}`);
  const res = spawnSync(findOpa(), ['test', ...(opts.verbose ? ['-v'] : []), ...paths], { encoding: 'utf8' });
  if (res.error) throw new CliError(`cannot run opa: ${res.error.message}`, EXIT_FAILED);
  io.out(res.stdout);
  if (res.stderr) io.err(res.stderr);
  if (res.status !== 0) throw new CliError('policy tests failed', EXIT_FAILED);
}

export function registerPolicyCommands(program: Command, io: Io): void {
  const policy = program.command('policy').description('evaluate and test sluice policies');
  policy
    .command('eval')
    .description('evaluate a policy input (JSON) with the compiled bundle and print the decision')
    .requiredOption('-i, --input <file>', 'policy input as JSON ("-" for stdin)')
    .option('-b, --bundle <path>', 'bundle.tar.gz or bundle directory', DEFAULT_BUNDLE)
    .action((opts: { input: string; bundle: string }) => evalCommand(opts, io));
  policy
    .command('test')
    .description('run the Rego unit tests (opa test) of a policy library')
    .option('-d, --dir <dir>', 'policy library with rego/ and data/', DEFAULT_POLICY_DIR)
    .option('-v, --verbose', 'list every test')
    .action((opts: { dir: string; verbose?: boolean }) => testCommand(opts, io));
  const explain = policy
    .command('explain')
    .description('show which rule decided a recorded audit event: re-evaluates its request and compares revisions (exit 3: other revision, 4: not reproduced)')
    .argument('[event]', 'the audit event as JSON, or an NDJSON export with --seq ("-" for stdin)')
    .option('--session <id>', 'read the event from this session (with --seq and a source)')
    .option('--seq <n>', 'the event\'s sequence number in the session or export')
    .option('-b, --bundle <path>', 'bundle.tar.gz or bundle directory to evaluate with', DEFAULT_BUNDLE)
    .option('-o, --output <format>', 'text, json or yaml', 'text');
  addSourceOptions(explain).action((event: string | undefined, opts: ExplainFlags & { bundle: string }) => explainCommand(event, opts, io));
}
