// bench/startup: time from `node sidecar/src/main.ts proxy` being spawned to its readiness endpoint
// answering 200 (what the kubelet's probe and the agent's containers wait for), N times, next to a
// node floor (`node -e` serving one HTTP endpoint, polled the same way) in interleaved runs. Then
// the idle RSS of one sidecar with approvals (a kubeconfig) and credentials (AWS STS role, a
// static secret) configured, a V8 heap summary of that process, and the RSS each large module
// adds when imported alone into a bare node (what holds the memory, by module). Bounded: N runs
// of a few hundred ms each, one process at a time.
//   node bench/startup/run.ts [--runs N] [--no-modules]
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { percentile, sortedCopy, table } from '../lib/stats.ts';
import { buildStrippedTree } from './stripped-tree.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '8' }, 'no-modules': { type: 'boolean', default: false } } });
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

/** Polls GET url every 2 ms until it answers 200; rejects when the child exits first or after 20 s. */
async function readyAfter(child: ChildProcess, url: string, started: number): Promise<number> {
  let exited: string | undefined;
  child.once('exit', (code) => (exited = `exited with ${code}`));
  while (performance.now() - started < 20_000) {
    if (exited) throw new Error(`process ${exited} before it was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(500) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
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
  /** main.ts (default) or the pre-stripped main.js */
  main?: string;
  flags?: string[];
  env?: Record<string, string>;
  /** approvals and credentials configured (default) or approvals off and no credentials */
  extras?: boolean;
}

async function startSidecar(tag: string, o: SidecarRun = {}) {
  const { file, adminPort } = await sidecarConfig(tag, o.extras ?? true);
  const started = performance.now();
  const child = spawn(node, [...(o.flags ?? []), o.main ?? join(root, 'sidecar', 'src', 'main.ts'), 'proxy'], {
    env: { ...process.env, ...o.env, SLUICE_CONFIG_FILE: file },
    cwd: join(work, tag),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    return { child, ms: await readyAfter(child, `http://127.0.0.1:${adminPort}/readyz`, started) };
  } catch (err) {
    await stop(child);
    throw new Error(`${(err as Error).message}\n${stderr.slice(-2000)}`, { cause: err });
  }
}

async function startFloor() {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(node, ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`], { stdio: 'ignore' });
  return { child, ms: await readyAfter(child, `http://127.0.0.1:${port}/`, started) };
}

// Start-up, interleaved: a floor, the sidecar as the image runs it (every .ts stripped of its
// types and compiled at each start), and the sidecar with Node's compile cache warm (what baking
// NODE_COMPILE_CACHE into the image would give), RUNS times; one warm-up round first (disk cache).
// …and the sidecar from JavaScript stripped ahead of time (what shipping .js in the image would give).
const compileCache = join(work, 'compile-cache');
const strippedMain = buildStrippedTree(root, join(work, 'stripped'));
const times = { sidecar: [] as number[], cached: [] as number[], stripped: [] as number[], floor: [] as number[] };
for (let i = -1; i < RUNS; i++) {
  const f = await startFloor();
  await stop(f.child);
  const s = await startSidecar(`run-${i + 1}`);
  await stop(s.child);
  const c = await startSidecar(`cached-${i + 1}`, { env: { NODE_COMPILE_CACHE: compileCache } });
  await stop(c.child);
  const j = await startSidecar(`stripped-${i + 1}`, { main: strippedMain });
  await stop(j.child);
  if (i >= 0) {
    times.floor.push(f.ms);
    times.sidecar.push(s.ms);
    times.cached.push(c.ms);
    times.stripped.push(j.ms);
  }
}

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
  ['from pre-stripped JavaScript', { main: strippedMain }],
  ['from pre-stripped JavaScript, --max-semi-space-size=1', { main: strippedMain, flags: ['--max-semi-space-size=1'] }],
];
const variantRss = [] as [string, number][];
for (const [i, [name, o]] of variants.entries()) variantRss.push([name, await idleRssOf(`variant-${i}`, o)]);

const idle = await startSidecar('idle', { flags: ['--heapsnapshot-signal=SIGUSR2'] });
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

console.log(`start-up: spawn → readiness 200, ${RUNS} runs each, interleaved (node ${process.version})`);
console.log('target: <= 300 ms to ready; idle RSS <= 60 MB with approvals and credentials configured\n');
const row = (name: string, xs: number[]) => {
  const s = sortedCopy(xs);
  return [name, percentile(s, 50), percentile(s, 95), s[0]!, s[s.length - 1]!];
};
console.log(
  table(
    ['process', 'p50 ms', 'p95 ms', 'min ms', 'max ms'],
    [
      row('sluice sidecar (main.ts proxy, as the image runs it)', times.sidecar),
      row('sluice sidecar, NODE_COMPILE_CACHE warm', times.cached),
      row('sluice sidecar from pre-stripped JavaScript', times.stripped),
      row('node floor (node -e, one http endpoint)', times.floor),
    ],
  ),
);
console.log(`\nidle RSS (approvals and credentials configured): sluice ${idleRss.toFixed(1)} MB, node floor ${floorRss.toFixed(1)} MB`);
for (const [name, rss] of variantRss) console.log(`  sluice, ${name}: ${rss.toFixed(1)} MB`);
const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(idleMemory)?.[1] ?? NaN) / 1024;
console.log(`  of which anonymous ${kb('Anonymous').toFixed(1)} MB, file-backed ${(kb('Rss') - kb('Anonymous')).toFixed(1)} MB`);

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
console.log(JSON.stringify({ bench: 'startup', runs: RUNS, sidecarMs: times.sidecar, cachedMs: times.cached, strippedMs: times.stripped, floorMs: times.floor, idleRssMb: idleRss, floorRssMb: floorRss, variantRss }));
