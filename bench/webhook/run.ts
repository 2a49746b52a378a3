// Webhook benchmark: AdmissionReviews over HTTPS with keep-alive, the way the API server calls the
// webhook, against two peers running side by side in their own processes:
//   floor  — bare node:http(s) parsing the same JSON and answering the same review bytes (HTTP + TLS + JSON only)
//   sluice — the real webhook server: /mutate on a labelled pod, /validate on the injected pod
// Peers are measured in interleaved rounds (12 by default: each under a second, so load elsewhere on
// the shared machine, which shifts over seconds, hits both alike).
// Three loads: a closed loop with 50 in flight (the target's concurrency; latency includes queueing
// on one core), an open loop at a fixed arrival rate with at most 50 in flight, and one at a time
// (per-review latency without queueing). Then the pure functions alone. Prints a table with
// reviews/s, p50/p99 and the ratio to the floor, then the figures as one JSON line. Bounded: a
// fixed request count per peer.
// Each row also has the CPU the peer's process used per review (/proc, all threads): time on CPU,
// which the machine's other load inflates far less than latency. Then both peers once more under
// --cpu-prof, alternating, for where sluice's CPU goes (areas, the admission path's hot spots).
//   node bench/webhook/run.ts [--requests N] [--rounds R] [--concurrency C] [--rate R] [--serial N]
//                             [--profile-requests N (0: no profile)] [--profile-dir DIR (keep the .cpuprofile files)]
// Writes bench/results/webhook.json (the figures of the last line).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Pool, buildConnector } from 'undici';
import { TestCA } from '../../e2e/support/kube/pki.ts';
import { summarizeCpuProfile } from '../lib/cpu-profile.ts';
import { benchConfig, injectedPod } from './config.ts';
import type { CpuProfile, CpuProfileSummary } from '../lib/cpu-profile.ts';
import { guardPodCreate } from '../../webhook/src/guard.ts';
import { planInjection } from '../../webhook/src/inject.ts';
import { alice, loadPod } from '../../testkit/webhook/fixtures.ts';
import { admissionReview } from '../../webhook/test/support/reviews.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '12000' },
    rounds: { type: 'string', default: '12' },
    concurrency: { type: 'string', default: '50' },
    serial: { type: 'string', default: '1500' },
    rate: { type: 'string', default: '1000' },
    'profile-requests': { type: 'string', default: '4000' },
    'profile-dir': { type: 'string' },
  },
});
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const SERIAL = Number(values.serial);
const RATE = Number(values.rate);
const PROFILE_REQUESTS = Number(values['profile-requests']);
const SERVER = join(import.meta.dirname, 'server.ts');
const ROOT = join(import.meta.dirname, '..', '..');

interface Row {
  peer: string;
  /** Concurrency of a closed loop, or the in-flight cap and arrival rate of the open loop. */
  load: string;
  requests: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  /** CPU the peer's process used per review (all its threads, /proc schedstat), when the OS tells. */
  cpuUsPerReview: number | undefined;
}

/**
 * CPU time (ns) a process has used so far, all threads: the sum of /proc/<pid>/task/<tid>/schedstat.
 * Time on CPU, not wall time, so load elsewhere on the machine inflates it far less than latency.
 * Undefined where there is no /proc (not Linux).
 */
function cpuNs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

/** Runs `fn` and adds the CPU `pid` used meanwhile to `acc.cpuNs` (undefined once unknown). */
async function withCpu<T>(pid: number | undefined, acc: { cpuNs: number | undefined }, fn: () => Promise<T>): Promise<T> {
  const before = cpuNs(pid);
  const result = await fn();
  const after = cpuNs(pid);
  acc.cpuNs = before === undefined || after === undefined || acc.cpuNs === undefined ? undefined : acc.cpuNs + (after - before);
  return result;
}

async function startPeer(mode: 'floor' | 'sluice', tlsDir: string, nodeFlags: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeFlags, SERVER, mode, tlsDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { child, port };
}

/** Sends `count` reviews with `concurrency` in flight; returns the elapsed seconds and each latency (ms). */
async function drive(pool: Pool, path: string, body: string, count: number, concurrency: number): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = new Array<number>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const res = await pool.request({ method: 'POST', path, body, headers: { 'content-type': 'application/json' } });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('"uid"')) throw new Error(`${path}: ${res.statusCode} ${text.slice(0, 200)}`);
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { seconds: (performance.now() - started) / 1000, latencies };
}

/**
 * Open loop: reviews arrive at `rate`/s whatever the server does (at most `concurrency` in flight),
 * each latency measured from its scheduled arrival, so queueing behind a slow one is counted.
 */
async function driveAtRate(pool: Pool, path: string, body: string, count: number, rate: number, concurrency: number): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const p: Promise<void> = pool
      .request({ method: 'POST', path, body, headers: { 'content-type': 'application/json' } })
      .then(async (res) => {
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode}`);
        latencies.push(performance.now() - due);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { seconds: (performance.now() - started) / 1000, latencies };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

const ca = await TestCA.create('sluice bench CA');
const tlsDir = mkdtempSync(join(tmpdir(), 'sluice-bench-tls-'));
const leaf = await ca.issue('sluice-webhook', ['127.0.0.1', 'localhost']);
writeFileSync(join(tlsDir, 'tls.crt'), leaf.certPem);
writeFileSync(join(tlsDir, 'tls.key'), leaf.keyPem);

const config = benchConfig();
const plain = loadPod('plain-pod.yaml');
const injected = injectedPod(plain, 'agents', alice, config);
const bodies = {
  '/mutate': JSON.stringify(admissionReview(plain, { uid: 'bench-mutate', userInfo: alice })),
  '/validate': JSON.stringify(admissionReview(injected, { uid: 'bench-validate', userInfo: alice })),
};
const combos = [
  { peer: 'floor: node:http, same JSON', mode: 'floor', path: '/mutate' },
  { peer: 'sluice /mutate', mode: 'sluice', path: '/mutate' },
  { peer: 'floor: node:http, same JSON', mode: 'floor', path: '/validate' },
  { peer: 'sluice /validate', mode: 'sluice', path: '/validate' },
] as const;

/**
 * A keep-alive pool of CONCURRENCY connections, as the API server's webhook client keeps them, that
 * counts its TLS handshakes: after the warm-up there should be none (each connection is reused).
 */
function keepAlivePool(port: number, handshakes: { count: number }): Pool {
  const connect = buildConnector({ ca: ca.certPem, servername: 'localhost' });
  return new Pool(`https://127.0.0.1:${port}`, {
    connections: CONCURRENCY,
    connect: (options, callback) => {
      handshakes.count++;
      connect(options, callback);
    },
  });
}

const peers = { floor: await startPeer('floor', tlsDir), sluice: await startPeer('sluice', tlsDir) };
const handshakes = { floor: { count: 0 }, sluice: { count: 0 } };
const pools = { floor: keepAlivePool(peers.floor.port, handshakes.floor), sluice: keepAlivePool(peers.sluice.port, handshakes.sluice) };
const warmHandshakes = { floor: 0, sluice: 0 };
const rows: Row[] = [];
try {
  // What is measured is the admitting path: /mutate patches, /validate allows, from both peers.
  for (const c of combos) {
    const res = await pools[c.mode].request({ method: 'POST', path: c.path, body: bodies[c.path], headers: { 'content-type': 'application/json' } });
    const answer = (await res.body.json()) as { response?: { allowed?: boolean; patchType?: string; status?: { message?: string } } };
    if (answer.response?.allowed !== true || (c.path === '/mutate') !== (answer.response.patchType === 'JSONPatch')) {
      throw new Error(`${c.peer} ${c.path} does not admit the bench pod: ${JSON.stringify(answer.response).slice(0, 300)}`);
    }
  }
  for (const c of combos) await drive(pools[c.mode], c.path, bodies[c.path], 2000, CONCURRENCY); // warm-up: JIT, TLS sessions
  warmHandshakes.floor = handshakes.floor.count;
  warmHandshakes.sluice = handshakes.sluice.count;
  const modes = [
    { label: `${CONCURRENCY}`, total: REQUESTS, run: (c: (typeof combos)[number], n: number) => drive(pools[c.mode], c.path, bodies[c.path], n, CONCURRENCY) },
    { label: `≤${CONCURRENCY} @${RATE}/s`, total: Math.min(REQUESTS, RATE * 6), run: (c: (typeof combos)[number], n: number) => driveAtRate(pools[c.mode], c.path, bodies[c.path], n, RATE, CONCURRENCY) },
    { label: '1', total: SERIAL, run: (c: (typeof combos)[number], n: number) => drive(pools[c.mode], c.path, bodies[c.path], n, 1) },
  ];
  for (const mode of modes) {
    const acc = combos.map((): { seconds: number; latencies: number[]; cpuNs: number | undefined } => ({ seconds: 0, latencies: [], cpuNs: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of combos.entries()) {
        const r = await withCpu(peers[c.mode].child.pid, acc[i]!, () => mode.run(c, Math.ceil(mode.total / ROUNDS)));
        acc[i]!.seconds += r.seconds;
        acc[i]!.latencies.push(...r.latencies);
      }
    }
    for (const [i, c] of combos.entries()) {
      const sorted = acc[i]!.latencies.sort((a, b) => a - b);
      const cpu = acc[i]!.cpuNs;
      rows.push({
        peer: `${c.peer} ${c.path === '/validate' ? '(validate body)' : '(mutate body)'}`,
        load: mode.label,
        requests: sorted.length,
        perSecond: sorted.length / acc[i]!.seconds,
        p50ms: percentile(sorted, 0.5),
        p99ms: percentile(sorted, 0.99),
        cpuUsPerReview: cpu === undefined ? undefined : cpu / 1000 / sorted.length,
      });
    }
  }
} finally {
  await Promise.all([pools.floor.close(), pools.sluice.close()]);
  peers.floor.child.kill('SIGTERM');
  peers.sluice.child.kill('SIGTERM');
}

/** Where the brief asked to look: the admission path's pieces, inclusive of what they call. */
const HOTSPOTS = [
  { label: 'read + JSON.parse the body (readJsonBody)', functionName: 'readJsonBody', urlIncludes: 'webhook/src/http-shell.ts' },
  { label: 'AdmissionReview schema check (parseAdmissionReview)', functionName: 'parseAdmissionReview', urlIncludes: 'webhook/src/admission-review.ts' },
  { label: 'pod shape check (podOf)', functionName: 'podOf', urlIncludes: 'webhook/src/admission-review.ts' },
  { label: 'patch building (planInjection)', functionName: 'planInjection', urlIncludes: 'webhook/src/inject.ts' },
  { label: 'guard (guardPodCreate)', functionName: 'guardPodCreate', urlIncludes: 'webhook/src/guard.ts' },
  { label: 'patch encoding (allow: JSON + base64)', functionName: 'allow', urlIncludes: 'webhook/src/admission-review.ts' },
  { label: 'answer (sendJson: stringify + write)', functionName: 'sendJson', urlIncludes: 'webhook/src/http-shell.ts' },
  { label: 'metrics + log after the answer', functionName: 'after', urlIncludes: 'webhook/src/server.ts' },
];

interface ProfileRun {
  mode: 'floor' | 'sluice';
  requests: number;
  summary: CpuProfileSummary;
  /** CPU per review the OS counted for the profiled process (the profile's own sampling included). */
  cpuUsPerReview: number | undefined;
}

/**
 * Both peers under --cpu-prof at once, driven in alternating batches (ROUNDS of them, mutate and
 * validate in turn) so the machine's other load falls on both alike; only the samples of the measured
 * window count, and a peer's idle time while the other is driven is left out as idle. A profile's
 * wall-clock samples swell when the OS takes the CPU away, so its areas are shown as shares of the
 * CPU the OS counted.
 */
async function profilePeers(): Promise<ProfileRun[]> {
  const modes = ['floor', 'sluice'] as const;
  const dirs = { floor: mkdtempSync(join(tmpdir(), 'sluice-bench-webhook-prof-floor-')), sluice: mkdtempSync(join(tmpdir(), 'sluice-bench-webhook-prof-sluice-')) };
  const spawned = { floor: 0, sluice: 0 };
  const started: Partial<Record<'floor' | 'sluice', { child: ChildProcess; port: number }>> = {};
  const profPools: Partial<Record<'floor' | 'sluice', Pool>> = {};
  const cpu = { floor: { cpuNs: 0 as number | undefined }, sluice: { cpuNs: 0 as number | undefined } };
  let window: { floor: { fromMs: number; toMs: number }; sluice: { fromMs: number; toMs: number } };
  try {
    for (const mode of modes) {
      spawned[mode] = performance.now();
      started[mode] = await startPeer(mode, tlsDir, ['--cpu-prof', '--cpu-prof-dir', dirs[mode], '--cpu-prof-interval', '250']);
      profPools[mode] = keepAlivePool(started[mode].port, { count: 0 });
    }
    for (const mode of modes) for (const path of ['/mutate', '/validate'] as const) await drive(profPools[mode]!, path, bodies[path], 2000, CONCURRENCY);
    const from = performance.now();
    const batch = Math.ceil(PROFILE_REQUESTS / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of ['/mutate', '/validate'] as const) {
        for (const mode of modes) await withCpu(started[mode]!.child.pid, cpu[mode], () => drive(profPools[mode]!, path, bodies[path], batch, CONCURRENCY));
      }
    }
    const to = performance.now();
    window = { floor: { fromMs: from - spawned.floor, toMs: to - spawned.floor }, sluice: { fromMs: from - spawned.sluice, toMs: to - spawned.sluice } };
  } finally {
    for (const mode of modes) {
      await profPools[mode]?.close();
      const child = started[mode]?.child;
      if (!child) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
  const requests = 2 * ROUNDS * Math.ceil(PROFILE_REQUESTS / ROUNDS);
  return modes.map((mode) => {
    const file = readdirSync(dirs[mode]).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`${mode} wrote no CPU profile in ${dirs[mode]}`);
    const text = readFileSync(join(dirs[mode], file), 'utf8');
    if (values['profile-dir']) {
      mkdirSync(values['profile-dir'], { recursive: true });
      writeFileSync(join(values['profile-dir'], `webhook-${mode}.cpuprofile`), text);
    }
    rmSync(dirs[mode], { recursive: true, force: true });
    const used = cpu[mode].cpuNs;
    return {
      mode,
      requests,
      summary: summarizeCpuProfile(JSON.parse(text) as CpuProfile, { root: ROOT, top: 15, window: window[mode], hotspots: HOTSPOTS }),
      cpuUsPerReview: used === undefined ? undefined : used / 1000 / requests,
    };
  });
}

const profiles: ProfileRun[] = [];
try {
  if (PROFILE_REQUESTS > 0) profiles.push(...(await profilePeers()));
} finally {
  rmSync(tlsDir, { recursive: true, force: true });
}

function pure(name: string, fn: () => void, iterations = 20_000) {
  for (let i = 0; i < 2000; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const ms = performance.now() - t0;
  return { name, perSecond: (iterations / ms) * 1000, microseconds: (ms * 1000) / iterations };
}
const ctx = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };
const pures = [pure('planInjection (pure, no I/O)', () => planInjection(plain, ctx, config)), pure('guardPodCreate (pure, no I/O)', () => guardPodCreate(injected, ctx, config))];

const num = (n: number, d = 2) => n.toFixed(d).padStart(10);
const cpuText = (r: Row) => (r.cpuUsPerReview === undefined ? '—' : r.cpuUsPerReview.toFixed(0)).padStart(10);
console.log(`\nwebhook benchmark — HTTPS keep-alive, node ${process.version}, ${ROUNDS} interleaved rounds per peer`);
console.log(`AdmissionReview bodies: mutate ${bodies['/mutate'].length} B, validate ${bodies['/validate'].length} B\n`);
console.log(`${'peer'.padEnd(44)} ${'load'.padStart(12)} ${'reviews/s'.padStart(10)} ${'p50 ms'.padStart(10)} ${'p99 ms'.padStart(10)} ${'CPU µs/rev'.padStart(10)}`);
rows.forEach((r) => console.log(`${r.peer.padEnd(44)} ${r.load.padStart(12)} ${num(r.perSecond, 0)} ${num(r.p50ms)} ${num(r.p99ms)} ${cpuText(r)}`));

// The same rows side by side: each sluice path next to the floor run on the same body in the same rounds.
const x = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}×`).padStart(7);
const pair = (a: number, b: number) => `${a.toFixed(2)} / ${b.toFixed(2)}`.padStart(17);
console.log(`\n${'side by side'.padEnd(22)} ${'load'.padStart(12)} ${'floor p50/p99 ms'.padStart(17)} ${'sluice p50/p99 ms'.padStart(17)}  ratio p50    p99    CPU    rps`);
rows.forEach((r, i) => {
  if (i % 2 === 0) return;
  const f = rows[i - 1]!;
  const path = r.peer.includes('/validate') ? '/validate' : '/mutate';
  console.log(`${path.padEnd(22)} ${r.load.padStart(12)} ${pair(f.p50ms, f.p99ms)} ${pair(r.p50ms, r.p99ms)}  ${x(r.p50ms, f.p50ms)} ${x(r.p99ms, f.p99ms)} ${x(r.cpuUsPerReview, f.cpuUsPerReview)} ${x(r.perSecond, f.perSecond)}`);
});
console.log('');
for (const p of pures) console.log(`${p.name.padEnd(44)} ${num(p.perSecond, 0)} /s  ${p.microseconds.toFixed(1)} µs each`);
console.log('');
for (const load of [`${CONCURRENCY}`, `≤${CONCURRENCY} @${RATE}/s`]) {
  const pairs = rows.flatMap((r, i) => (i % 2 && r.load === load ? [{ sluice: r, floor: rows[i - 1]! }] : []));
  const worst = Math.max(...pairs.map((p) => p.sluice.p99ms));
  const worstRatio = Math.max(...pairs.map((p) => p.sluice.p99ms / p.floor.p99ms));
  const met = worst <= 5 || worstRatio <= 1.2;
  console.log(`target p99 ≤ 5 ms or ≤ 1.2× the node:http floor, load ${load}: ${met ? 'met' : 'not met'} (worst sluice p99 ${worst.toFixed(2)} ms, ${worstRatio.toFixed(2)}× its floor)`);
}
console.log(
  `TLS handshakes: floor ${warmHandshakes.floor} in the warm-up, ${handshakes.floor.count - warmHandshakes.floor} after; sluice ${warmHandshakes.sluice} in the warm-up, ${handshakes.sluice.count - warmHandshakes.sluice} after (keep-alive, as the API server's webhook client)`,
);
console.log('(closed loop: 50 always in flight, so latency ≈ 50 × CPU per review plus queueing on 2 shared cores; open loop: arrivals at a fixed rate, latency from arrival; CPU: the process\'s own, all threads, from /proc)');

for (const p of profiles) {
  const s = p.summary;
  // Shares of the profile's busy samples, in µs of the CPU the OS counted for the profiled process.
  const perReview = p.cpuUsPerReview ?? (s.busyMs * 1000) / p.requests;
  const us = (ms: number) => ((ms / s.busyMs) * perReview).toFixed(1).padStart(10);
  console.log(`\n${p.mode} CPU profile: ${p.requests} reviews (half mutate, half validate) at ${CONCURRENCY} in flight, alternating with the other peer; ${perReview.toFixed(0)} µs CPU per review under the profiler`);
  for (const a of s.byArea.filter((v) => v.pctOfBusy >= 1)) console.log(`  ${a.area.padEnd(52)} ${us(a.selfMs)} µs/review ${a.pctOfBusy.toFixed(1).padStart(6)} %`);
  if (p.mode === 'sluice') {
    console.log('  hot spots (inclusive):');
    for (const h of s.hotspots) console.log(`  ${h.label.padEnd(52)} ${us(h.totalMs)} µs/review ${h.pctOfBusy.toFixed(1).padStart(6)} %`);
  }
  console.log('  top self time:');
  for (const f of s.topSelf.slice(0, 12)) console.log(`  ${`${f.name} ${f.where}`.slice(0, 52).padEnd(52)} ${us(f.selfMs)} µs/review ${f.pctOfBusy.toFixed(1).padStart(6)} %`);
}
console.log('');
const result = {
  bench: 'webhook',
  node: process.version,
  rows,
  pure: pures,
  tlsHandshakes: { warmUp: warmHandshakes, measured: { floor: handshakes.floor.count - warmHandshakes.floor, sluice: handshakes.sluice.count - warmHandshakes.sluice } },
  profiles: profiles.map((p) => ({ mode: p.mode, requests: p.requests, cpuUsPerReview: p.cpuUsPerReview, byArea: p.summary.byArea, hotspots: p.summary.hotspots })),
};
console.log(JSON.stringify(result));
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'webhook.json'), `${JSON.stringify(result, null, 2)}\n`);
