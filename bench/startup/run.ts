// bench/startup: time from the sidecar being spawned as the image runs it (`node
// --max-semi-space-size=2 sidecar/src/main.js proxy` from the JavaScript tree the image ships,
// charts/images/strip-types.ts) to its readiness endpoint answering 200 (what the kubelet's probe
// and the agent's containers wait for), and the CPU the process spent until then, N times, next to
// a node floor (`node -e` serving one HTTP endpoint, polled the same way) in interleaved runs; also
// the sidecar from its .ts sources (as tests run it), with Node's compile cache warm, and from one
// esbuild bundle (what other ways of shipping would give). The sidecar's own 'sidecar ready' log
// line gives the start-up steps. Then one CPU profile of a start
// (type stripping, module loading, GC, by package), the modules loaded by package, the idle RSS of
// one sidecar with approvals (a kubeconfig) and credentials (AWS STS role, a static secret)
// configured and of variants (V8 young generation size, shipping forms), a V8 heap summary, and
// the RSS each large module adds when imported alone into a bare node. Bounded: N runs of a few
// hundred ms each, one process at a time.
//   node bench/startup/run.ts [--runs N] [--no-modules] [--compare DIR]
// --compare DIR adds a row for another tree's sidecar in the same interleaved runs (DIR holds api/,
// lib/, sidecar/ and node_modules of an earlier revision, e.g. `git archive REV api lib sidecar
// package.json | tar -x -C DIR` plus `cp -al node_modules DIR/`): a before/after in one run.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CpuProfile } from '../lib/cpu-profile.ts';
import { percentile, sortedCopy, table } from '../lib/stats.ts';
import { SIDECAR_NODE_OPTIONS } from '../../charts/images/image-spec.ts';
import { buildSidecarBundle } from './bundle.ts';
import { buildStrippedTree } from './stripped-tree.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '8' }, 'no-modules': { type: 'boolean', default: false }, compare: { type: 'string' } } });
const compareMain = values.compare ? join(values.compare, 'sidecar', 'src', 'main.ts') : undefined;
/** The V8 flags the sidecar image sets (NODE_OPTIONS): every sidecar row runs with them unless it says otherwise. */
const IMAGE_FLAGS = SIDECAR_NODE_OPTIONS.split(/\s+/).filter(Boolean);
const RUNS = Number(values.runs);
const root = join(import.meta.dirname, '..', '..');
const node = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'sluice-startup-'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Polls GET url every 2 ms until it answers 200 (wall ms since spawn, and the child's CPU ms then);
 * rejects when the child exits first or after 20 s.
 */
async function readyAfter(child: ChildProcess, url: string, started: number): Promise<{ ms: number; cpu: number }> {
  let exited: string | undefined;
  child.once('exit', (code) => (exited = `exited with ${code}`));
  while (performance.now() - started < 20_000) {
    if (exited) throw new Error(`process ${exited} before it was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(500) });
      await res.arrayBuffer();
      if (res.status === 200) return { ms: performance.now() - started, cpu: cpuMs(child.pid!) };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`${url} not ready after 20 s`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

/** CPU (user + system) a process has used so far, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

// A sidecar configured as in a pod with approvals and credentials on: the kubeconfig points at an
// API server that is not there (holds would fail closed; start-up must not wait for it).
const tokens = join(work, 'tokens');
mkdirSync(tokens, { recursive: true });
writeFileSync(join(tokens, 'aws'), 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
writeFileSync(join(work, 'static-secret'), 'bench-static-token');
writeFileSync(
  join(work, 'kubeconfig'),
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 'bench' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'bench' } }],
    'current-context': 'x',
  }),
);

async function sidecarConfig(tag: string, extras = true): Promise<{ file: string; adminPort: number }> {
  const dir = join(work, tag);
  mkdirSync(dir, { recursive: true });
  const adminPort = await freePort();
  const config = {
    pod: { namespace: 'bench', name: 'bench-agent-0', serviceAccount: 'bench-agent' },
    policy: { path: join(root, 'policies', 'build', 'bundle.tar.gz') },
    podInfoDir: join(dir, 'podinfo'),
    trustDir: join(dir, 'trust'),
    resolvConf: join(dir, 'resolv.conf'),
    audit: { spoolDir: join(dir, 'spool') },
    ports: { transparent: 0, proxy: 0, dns: 0, admin: adminPort },
    bind: { transparent: '127.0.0.1', proxy: '127.0.0.1', dns: ['127.0.0.1'], admin: '127.0.0.1' },
    ...(extras
      ? {
          approvals: { kubeconfig: join(work, 'kubeconfig') },
          credentials: {
            tokenDir: tokens,
            aws: { roles: [{ roleArn: 'arn:aws:iam::123456789012:role/bench-agent' }] },
            static: { bench: { file: join(work, 'static-secret'), hosts: ['api.example.com'] } },
          },
        }
      : { approvals: { enabled: false } }),
  };
  const file = join(dir, 'sidecar.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { file, adminPort };
}

interface SidecarRun {
  /** the entry point (default: main.js of the JavaScript tree, as the image runs it) */
  main?: string;
  /** node flags (default: the image's NODE_OPTIONS) */
  flags?: string[];
  env?: Record<string, string>;
  /** approvals and credentials configured (default) or approvals off and no credentials */
  extras?: boolean;
}

async function startSidecar(tag: string, o: SidecarRun = {}) {
  const { file, adminPort } = await sidecarConfig(tag, o.extras ?? true);
  const started = performance.now();
  const child = spawn(node, [...(o.flags ?? IMAGE_FLAGS), o.main ?? imageMain, 'proxy'], {
    env: { ...process.env, ...o.env, SLUICE_CONFIG_FILE: file },
    cwd: join(work, tag),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  try {
    const ready = await readyAfter(child, `http://127.0.0.1:${adminPort}/readyz`, started);
    // The ready line is written just before the admin port answers; give the pipe a moment.
    for (let i = 0; i < 50 && !stdout.includes('"startupMs"'); i++) await new Promise((r) => setTimeout(r, 10));
    return { child, ...ready, phases: startupPhases(stdout) };
  } catch (err) {
    await stop(child);
    throw new Error(`${(err as Error).message}\n${stderr.slice(-2000)}${stdout.slice(-2000)}`, { cause: err });
  }
}

/** The start-up steps the sidecar logs with 'sidecar ready' (sidecar.ts startupClock). */
function startupPhases(stdout: string): Record<string, number> {
  for (const line of stdout.split('\n')) {
    if (!line.includes('"startupMs"')) continue;
    try {
      return (JSON.parse(line) as { startupMs: Record<string, number> }).startupMs;
    } catch {
      // not JSON
    }
  }
  return {};
}

async function startFloor() {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(node, ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`], { stdio: 'ignore' });
  return { child, ...(await readyAfter(child, `http://127.0.0.1:${port}/`, started)) };
}

// Start-up, interleaved: a floor, the sidecar as the image runs it, from the .ts sources (every
// module stripped of its types at each start), the same with Node's compile cache warm, and from one
// bundle, RUNS times; one warm-up round first (disk cache).
const compileCache = join(work, 'compile-cache');
/** The sidecar as the image runs it: main.js of the JavaScript tree (charts/images/strip-types.ts). */
const imageMain = buildStrippedTree(root, join(work, 'stripped'));
/** The sidecar from its TypeScript sources, as the tests and a checkout run it. */
const sourceMain = join(root, 'sidecar', 'src', 'main.ts');
const bundleMain = await buildSidecarBundle(root, join(work, 'bundle'));
const KINDS = ['sidecar', 'source', 'cached', 'bundle', 'floor', 'compare'] as const;
type Kind = (typeof KINDS)[number];
const times = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
const cpus = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
const phaseRuns: Record<string, number>[] = [];
for (let i = -1; i < RUNS; i++) {
  const runs: [Kind, { child: ChildProcess; ms: number; cpu: number; phases?: Record<string, number> }][] = [];
  const f = await startFloor();
  await stop(f.child);
  runs.push(['floor', f]);
  const s = await startSidecar(`run-${i + 1}`);
  await stop(s.child);
  runs.push(['sidecar', s]);
  const c = await startSidecar(`cached-${i + 1}`, { main: sourceMain, env: { NODE_COMPILE_CACHE: compileCache } });
  await stop(c.child);
  runs.push(['cached', c]);
  const j = await startSidecar(`source-${i + 1}`, { main: sourceMain });
  await stop(j.child);
  runs.push(['source', j]);
  const b = await startSidecar(`bundle-${i + 1}`, { main: bundleMain });
  await stop(b.child);
  runs.push(['bundle', b]);
  if (compareMain) {
    // As the image ran it before it set NODE_OPTIONS.
    const o = await startSidecar(`compare-${i + 1}`, { main: compareMain, flags: [] });
    await stop(o.child);
    runs.push(['compare', o]);
  }
  if (i < 0) continue;
  for (const [kind, r] of runs) {
    times[kind].push(r.ms);
    cpus[kind].push(r.cpu);
  }
  phaseRuns.push(s.phases);
}

// One start-up under the CPU profiler (as the image runs it), and the modules it loads by package.
const profDir = join(work, 'cpu-profile');
const profiled = await startSidecar('profiled', { flags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
await stop(profiled.child);
const profile = JSON.parse(readFileSync(join(profDir, readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))!), 'utf8')) as CpuProfile;
const hook = join(work, 'loaded-modules.mjs');
const loadedFile = join(work, 'loaded-modules.json');
writeFileSync(
  hook,
  `import { registerHooks } from 'node:module';\nimport { writeFileSync } from 'node:fs';\nconst seen = [];\nregisterHooks({ load(url, c, next) { seen.push(url); return next(url, c); } });\nsetTimeout(() => writeFileSync(${JSON.stringify(loadedFile)}, JSON.stringify(seen)), 1000).unref();\n`,
);
const traced = await startSidecar('traced', { flags: ['--import', hook] });
await new Promise((r) => setTimeout(r, 1200));
await stop(traced.child);
const loaded = JSON.parse(readFileSync(loadedFile, 'utf8')) as string[];

// Idle RSS after start-up settles, and what the V8 heap holds.
async function idleRssOf(tag: string, o: SidecarRun): Promise<number> {
  const run = await startSidecar(tag, o);
  await new Promise((r) => setTimeout(r, 1500));
  const rss = rssMb(run.child.pid!);
  await stop(run.child);
  return rss;
}
const variants: [string, SidecarRun][] = [
  ['approvals off, no credentials', { extras: false }],
  ['--max-semi-space-size=1 (smaller V8 young generation)', { flags: ['--max-semi-space-size=1'] }],
  ['--max-semi-space-size=4', { flags: ['--max-semi-space-size=4'] }],
  ['from the .ts sources (main.ts: Node strips the types at start)', { main: sourceMain }],
  ['from the .ts sources, V8 default young generation (the image before issue 23)', { main: sourceMain, flags: [] }],
  ['from one esbuild bundle', { main: bundleMain }],
  ['from one esbuild bundle, --max-semi-space-size=1', { main: bundleMain, flags: ['--max-semi-space-size=1'] }],
  ['without the image\'s NODE_OPTIONS (V8 default young generation)', { flags: [] }],
  ...(compareMain ? ([[`at ${values.compare!} (--compare, no NODE_OPTIONS)`, { main: compareMain, flags: [] }]] as [string, SidecarRun][]) : []),
];
const variantRss = [] as [string, number][];
for (const [i, [name, o]] of variants.entries()) variantRss.push([name, await idleRssOf(`variant-${i}`, o)]);

const idle = await startSidecar('idle', { flags: [...IMAGE_FLAGS, '--heapsnapshot-signal=SIGUSR2'] });
await new Promise((r) => setTimeout(r, 1500));
const idleRss = rssMb(idle.child.pid!);
const idleMemory = readFileSync(`/proc/${idle.child.pid}/smaps_rollup`, 'utf8');
const heapDir = join(work, 'idle');
idle.child.kill('SIGUSR2');
let snapshot: string | undefined;
for (let i = 0; i < 200 && !snapshot; i++) {
  await new Promise((r) => setTimeout(r, 100));
  const found = execFileSync('ls', [heapDir], { encoding: 'utf8' }).split('\n').find((f) => f.endsWith('.heapsnapshot'));
  if (found) {
    const size = () => readFileSync(join(heapDir, found)).length;
    const a = size();
    await new Promise((r) => setTimeout(r, 300));
    if (a > 0 && a === size()) snapshot = join(heapDir, found);
  }
}
await stop(idle.child);
const floorIdle = await startFloor();
await new Promise((r) => setTimeout(r, 500));
const floorRss = rssMb(floorIdle.child.pid!);
await stop(floorIdle.child);

console.log(`start-up: spawn → readiness 200, ${RUNS} runs each, interleaved (node ${process.version}, ${availableParallelism()} CPUs, load ${loadavg()[0]!.toFixed(1)}); sidecars run with the image's NODE_OPTIONS (${SIDECAR_NODE_OPTIONS}) unless a row says otherwise`);
console.log('target: <= 300 ms to ready; idle RSS <= 60 MB with approvals and credentials configured\n');
const median = (xs: number[]) => percentile(sortedCopy(xs), 50);
const row = (name: string, kind: Kind) => {
  const s = sortedCopy(times[kind]);
  return [name, percentile(s, 50), percentile(s, 95), s[0]!, s[s.length - 1]!, median(cpus[kind])];
};
console.log(
  table(
    ['process', 'p50 ms', 'p95 ms', 'min ms', 'max ms', 'CPU ms to ready (p50)'],
    [
      row('sluice sidecar as the image runs it (main.js, NODE_OPTIONS)', 'sidecar'),
      row('sluice sidecar from the .ts sources (main.ts)', 'source'),
      row('sluice sidecar from the .ts sources, NODE_COMPILE_CACHE warm', 'cached'),
      row('sluice sidecar from one esbuild bundle', 'bundle'),
      row('node floor (node -e, one http endpoint)', 'floor'),
      ...(compareMain ? [row(`sluice sidecar at ${values.compare!} (--compare)`, 'compare')] : []),
    ],
  ),
);
// The sidecar's own account of its start-up (median of each step over the runs).
const steps = Object.keys(phaseRuns[0] ?? {});
console.log(
  '\n' +
    table(
      ['start-up step (sidecar ready log, as the image runs it)', 'p50 ms'],
      steps.map((k) => [k === 'boot' ? 'boot: node, module loading, config validation' : k, median(phaseRuns.map((p) => p[k] ?? 0))]),
    ),
);
console.log('\n' + table(['CPU profile of one start-up (self time)', 'ms'], startupProfile(profile, root)));
console.log('\n' + table([`modules loaded by the sidecar (${loaded.length})`, 'count'], modulesByPackage(loaded, root)));
console.log(`\nidle RSS (approvals and credentials configured): sluice ${idleRss.toFixed(1)} MB, node floor ${floorRss.toFixed(1)} MB`);
for (const [name, rss] of variantRss) console.log(`  sluice, ${name}: ${rss.toFixed(1)} MB`);
const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(idleMemory)?.[1] ?? NaN) / 1024;
console.log(`  of which anonymous ${kb('Anonymous').toFixed(1)} MB, file-backed ${(kb('Rss') - kb('Anonymous')).toFixed(1)} MB`);

/**
 * Self time of a start-up profile by what it was for: type stripping (amaro, Node's TypeScript
 * stripper, with its WASM), module loading (resolve, read, compile), GC, each npm package's own
 * evaluation, sluice's code, the rest of Node. A sample counts for type stripping or module
 * loading when such a frame is anywhere on its stack.
 */
function startupProfile(p: CpuProfile, repo: string): [string, number][] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i + 1] ?? 0;
    let area: string | undefined;
    const self = byId.get(p.samples[i]!)!.callFrame;
    if (self.functionName === '(idle)') area = 'idle (waiting: I/O, timers)';
    else if (self.functionName === '(garbage collector)') area = 'GC';
    for (let id: number | undefined = p.samples[i]; !area && id !== undefined; id = parent.get(id)) {
      const url = byId.get(id)!.callFrame.url;
      if (url.includes('internal/deps/amaro')) area = 'type stripping (amaro)';
    }
    if (!area && /^node:internal\/modules\//.test(self.url)) area = 'module loading (resolve, read, compile)';
    if (!area) {
      const path = self.url.replace(`file://${repo}/`, '');
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
      if (self.url.startsWith('wasm://')) area = 'WASM (policy compile/eval)';
      else if (pkg) area = `npm: ${pkg}`;
      else if (/\/(api|lib|sidecar)\/src\//.test(self.url)) area = `sluice: ${/\/((?:api|lib|sidecar)\/src\/[^/]+)/.exec(self.url)![1]!.replace(/\.(ts|js)$/, '')}`;
      else if (self.url.startsWith('node:')) area = 'node: other';
      else area = 'V8/native';
    }
    out.set(area, (out.get(area) ?? 0) + us / 1000);
  }
  return [...out].sort((a, b) => b[1] - a[1]).slice(0, 16);
}

/** Loaded module URLs counted by npm package, sluice area or Node builtin. */
function modulesByPackage(urls: string[], repo: string): [string, number][] {
  const out = new Map<string, number>();
  for (const url of urls) {
    const path = url.replace(`file://${repo}/`, '');
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
    const area = /\/((?:api|lib|sidecar)\/src)\//.exec(url)?.[1];
    const key = pkg ? `npm: ${pkg}` : url.startsWith('node:') ? 'node: builtins' : area ? `sluice: ${area}` : 'other';
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return [...out].sort((a, b) => b[1] - a[1]).slice(0, 14);
}

interface HeapSummary {
  totalMb: number;
  byType: [string, number][];
  scripts: [string, number][];
}
/** Self sizes of a heap snapshot by node type, and code/source by script (package) name. */
function summarizeHeap(file: string): HeapSummary {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byType = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const size = snap.nodes[i + sizeAt]!;
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    if (type === 'code' || type === 'string') {
      // Script sources are strings named by their content; attribute compiled code by name only.
      continue;
    }
    if (type === 'closure' || type === 'object') {
      const name = snap.strings[snap.nodes[i + nameAt]!] ?? '';
      byPackage.set(name, (byPackage.get(name) ?? 0) + size);
    }
  }
  const mb = (n: number) => n / 2 ** 20;
  return {
    totalMb: mb(total),
    byType: [...byType].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => [k, mb(v)]),
    scripts: [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, mb(v)]),
  };
}
if (snapshot) {
  const heap = summarizeHeap(snapshot);
  console.log(`\nV8 heap of the idle sidecar: ${heap.totalMb.toFixed(1)} MB in the snapshot`);
  console.log(table(['by node type', 'MB'], heap.byType));
  console.log('\n' + table(['by constructor (objects, closures)', 'MB'], heap.scripts));
}

// What each large dependency costs on its own: RSS of a bare node after importing it, minus a bare node.
if (!values['no-modules']) {
  const modules = [
    ['(bare node)', ''],
    ["a one-line .ts module (Node's type stripper alone)", join(work, 'one-line.ts')],
    ['zod', 'zod'],
    ['pino', 'pino'],
    ['prom-client', 'prom-client'],
    ['undici', 'undici'],
    ['yaml', 'yaml'],
    ['@open-policy-agent/opa-wasm', '@open-policy-agent/opa-wasm'],
    ['@kubernetes/client-node', '@kubernetes/client-node'],
    ['api/src (schemas)', join(root, 'api', 'src', 'index.ts')],
    ['sidecar/src/sidecar.ts (everything main imports)', join(root, 'sidecar', 'src', 'sidecar.ts')],
  ];
  writeFileSync(join(work, 'one-line.ts'), 'export const x: number = 1;\n');
  const rows: (string | number)[][] = [];
  let bare = 0;
  for (const [name, spec] of modules) {
    const code = `${spec ? `await import(${JSON.stringify(spec)});` : ''} globalThis.gc?.(); await new Promise((r) => setTimeout(r, 200)); const s = require('node:fs').readFileSync('/proc/self/status', 'utf8'); console.log(Number(/VmRSS:\\s+(\\d+)/.exec(s)[1]) / 1024);`;
    const out = execFileSync(node, ['--expose-gc', '--input-type=module', '-e', code.replace("require('node:fs')", "(await import('node:fs'))")], { cwd: root, encoding: 'utf8' });
    const rss = Number(out.trim());
    if (!spec) bare = rss;
    rows.push([name!, rss, spec ? rss - bare : 0]);
  }
  console.log('\n' + table(['imported alone into node', 'RSS MB', '+ over bare node'], rows));
}
rmSync(work, { recursive: true, force: true });
console.log(
  `\nsummary: start-up to ready p50 ${median(times.sidecar).toFixed(0)} ms (CPU ${median(cpus.sidecar)} ms; target 300; bundle ${median(times.bundle).toFixed(0)} ms; node floor ${median(times.floor).toFixed(0)} ms), idle RSS ${idleRss.toFixed(1)} MB (target 60; node floor ${floorRss.toFixed(1)} MB)`,
);
console.log(
  JSON.stringify({
    bench: 'startup',
    runs: RUNS,
    sidecarMs: times.sidecar,
    cachedMs: times.cached,
    sourceMs: times.source,
    bundleMs: times.bundle,
    floorMs: times.floor,
    cpuMs: cpus,
    phases: phaseRuns,
    modulesLoaded: loaded.length,
    idleRssMb: idleRss,
    floorRssMb: floorRss,
    variantRss,
  }),
);
