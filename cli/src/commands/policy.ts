// `kubectl sluice policy eval|test|explain`: evaluate an input with the same WASM engine the sidecar
// runs, run the Rego unit tests with the pinned OPA, and explain a recorded audit event — each with a
// local bundle or, with --cluster, with the policy a namespace's sidecars run (policy/cluster-*.ts),
// never letting a local build of another revision pass for it silently. Reads only.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { PolicyInput, SchemaError, decisionAction, parseOrThrow } from '../../../api/src/index.ts';
import { BundleError, readBundle } from '../../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { CliError, EXIT_FAILED } from '../errors.ts';
import { loadClusterPolicy, loadIntoEngine } from '../policy/cluster-load.ts';
import type { ClusterFlags, ClusterLoaded } from '../policy/cluster-load.ts';
import { EXIT_REVISION_MISMATCH } from '../policy/explain.ts';
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

export interface EvalFlags extends ClusterFlags {
  input: string;
  bundle: string;
}

export async function evalCommand(opts: EvalFlags, io: Io, bundleExplicit = true): Promise<void> {
  let input: PolicyInput;
  try {
    input = parseOrThrow(PolicyInput, readInput(opts.input), `input ${opts.input} does not match the policy input schema`);
  } catch (err) {
    if (err instanceof SchemaError) throw new CliError(err.message);
    throw err;
  }
  if (opts.allowStale && !opts.cluster) throw new CliError('--allow-stale goes with --cluster');
  const engine = new PolicyEngine();
  let cluster: ClusterLoaded | undefined;
  try {
    if (opts.cluster) {
      // The sidecar of the input's pod decides with its namespace's policy; -n names another.
      if (opts.namespace !== undefined && opts.namespace !== input.pod.namespace) io.err(`note: evaluating with the policy of namespace ${opts.namespace}; the input's pod is in ${input.pod.namespace}\n`);
      cluster = await loadClusterPolicy(opts, { namespace: opts.namespace ?? input.pod.namespace, bundle: bundleExplicit ? opts.bundle : undefined, explicit: bundleExplicit, defaultBundle: DEFAULT_BUNDLE }, io);
      await loadIntoEngine(engine, cluster);
    } else {
      await engine.load(await readBundle(opts.bundle));
    }
  } catch (err) {
    if (err instanceof BundleError) throw new CliError(`${err.message} (${err.code}); run \`make policy\` to build it`, EXIT_FAILED);
    throw err;
  }
  const { decision, fault, revision } = engine.evaluate(input);
  const out = { action: decisionAction(decision), revision, ...(fault ? { fault } : {}), decision, ...(cluster ? { cluster: cluster.summary } : {}) };
  io.out(`${JSON.stringify(out, null, 2)}\n`);
}

function findOpa(): string {
  const local = repoRoot ? join(repoRoot, '.tools', 'bin', 'opa') : undefined;
  return process.env.SLUICE_OPA ?? (local && existsSync(local) ? local : 'opa');
}

export interface TestFlags extends ClusterFlags {
  dir: string;
  verbose?: boolean;
  bundle?: string;
}

/** The library's own build (DIR/build/bundle.tar.gz), refused when a source is newer than it. */
function libraryBuild(dir: string): string {
  const build = join(dir, 'build', 'bundle.tar.gz');
  if (!existsSync(build)) throw new CliError(`no build of ${dir} at ${build}: run \`make policy\` (or pass --bundle) so its revision can be compared with the cluster's`, EXIT_FAILED);
  const built = statSync(build).mtimeMs;
  const newer = ['rego', 'data'].flatMap((sub) => listFiles(join(dir, sub))).find((f) => !f.endsWith('_test.rego') && statSync(f).mtimeMs > built);
  if (newer) throw new CliError(`stale local build: ${newer} is newer than ${build}; run \`make policy\``, EXIT_REVISION_MISMATCH);
  return build;
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** DIR/data with the cluster's organisation in place of the library's example (data.organisation). */
function dataWithOrganisation(dataDir: string, organisation: unknown): string {
  const out = mkdtempSync(join(tmpdir(), 'sluice-test-data-'));
  if (existsSync(dataDir)) cpSync(dataDir, out, { recursive: true, filter: (src) => relative(dataDir, src).split(sep)[0] !== 'organisation' });
  mkdirSync(join(out, 'organisation'), { recursive: true });
  writeFileSync(join(out, 'organisation', 'data.json'), JSON.stringify(organisation));
  return out;
}

export async function testCommand(opts: TestFlags, io: Io): Promise<void> {
  if (opts.allowStale && !opts.cluster) throw new CliError('--allow-stale goes with --cluster');
  let dataDir = join(opts.dir, 'data');
  if (opts.cluster) {
    const build = opts.bundle ?? libraryBuild(opts.dir);
    const loaded = await loadClusterPolicy(opts, { namespace: opts.namespace, bundle: build, explicit: opts.bundle !== undefined, defaultBundle: build }, io);
    if (loaded.cluster.organisation) {
      dataDir = dataWithOrganisation(dataDir, loaded.cluster.organisation.value);
      io.err(`testing with the organisation of namespace ${loaded.cluster.namespace} (SluicePolicy ${loaded.cluster.organisation.objects.join(', ')}, revision ${loaded.cluster.organisation.revision})\n`);
    }
  }
  const paths = [join(opts.dir, 'rego'), dataDir].filter((p) => existsSync(p));
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
    .option('--cluster', "with the policy the cluster's sidecars run in the input's namespace (or -n): its SluicePolicy organisation, its own bundle if it has one; a local build of another revision is refused (exit 3)")
    .option('--allow-stale', 'with --cluster: evaluate with a local build of another revision anyway')
    .action((opts: EvalFlags, cmd: Command) => evalCommand(opts, io, cmd.getOptionValueSource('bundle') !== 'default'));
  policy
    .command('test')
    .description('run the Rego unit tests (opa test) of a policy library')
    .option('-d, --dir <dir>', 'policy library with rego/ and data/', DEFAULT_POLICY_DIR)
    .option('-v, --verbose', 'list every test')
    .option('--cluster', "with the organisation the cluster's sidecars use in -n; refused (exit 3) when the library's build (DIR/build/bundle.tar.gz or --bundle) is not the revision they run")
    .option('-b, --bundle <path>', 'with --cluster: the build to compare with the cluster (default DIR/build/bundle.tar.gz)')
    .option('--allow-stale', 'with --cluster: test anyway when the build is of another revision')
    .action((opts: TestFlags) => testCommand(opts, io));
  const explain = policy
    .command('explain')
    .description('show which rule decided a recorded audit event: re-evaluates its request and compares revisions (exit 3: other revision, 4: not reproduced)')
    .argument('[event]', 'the audit event as JSON, or an NDJSON export with --seq ("-" for stdin)')
    .option('--session <id>', 'read the event from this session (with --seq and a source)')
    .option('--seq <n>', 'the event\'s sequence number in the session or export')
    .option('-b, --bundle <path>', 'bundle.tar.gz or bundle directory to evaluate with', DEFAULT_BUNDLE)
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .option('--cluster', "with the policy the cluster's sidecars run in the event's namespace (its SluicePolicy organisation, its own bundle if any)")
    .option('--allow-stale', 'with --cluster: evaluate with a local build of another revision anyway');
  addSourceOptions(explain).action((event: string | undefined, opts: ExplainFlags & { bundle: string }, cmd: Command) => explainCommand(event, opts, io, cmd.getOptionValueSource('bundle') !== 'default'));
}
