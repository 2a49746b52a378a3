// Webhook benchmark: AdmissionReviews over HTTPS with keep-alive, the way the API server calls the
// webhook, against two peers running side by side in their own processes:
//   floor  — bare node:http(s) parsing the same JSON and answering the same review bytes (HTTP + TLS + JSON only)
//   sluice — the real webhook server: /mutate on a labelled pod, /validate on the injected pod
// Peers are measured in interleaved rounds, so load elsewhere on the machine hits them alike.
// Three loads: a closed loop with 50 in flight (the target's concurrency; latency includes queueing
// on one core), an open loop at a fixed arrival rate with at most 50 in flight, and one at a time
// (per-review latency without queueing). Then the pure functions alone. Prints a table with
// reviews/s, p50/p99 and the ratio to the floor, then the figures as one JSON line. Bounded: a
// fixed request count per peer.
//   node bench/webhook/run.ts [--requests N] [--rounds R] [--concurrency C] [--rate R] [--serial N]
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { TestCA } from '../../e2e/support/kube/pki.ts';
import { summarizeCpuProfile } from '../lib/cpu-profile.ts';
import type { CpuProfile, CpuProfileSummary } from '../lib/cpu-profile.ts';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { guardPodCreate } from '../../webhook/src/guard.ts';
import { planInjection } from '../../webhook/src/inject.ts';
import { alice, loadPod } from '../../testkit/webhook/fixtures.ts';
import { admissionReview } from '../../webhook/test/support/reviews.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '12000' },
    rounds: { type: 'string', default: '3' },
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

const plain = loadPod('plain-pod.yaml');
const injected = loadPod('plain-pod.patched.yaml');
const bodies = {
  '/mutate': JSON.stringify(admissionReview(plain, { uid: 'bench-mutate' })),
  '/validate': JSON.stringify(admissionReview(injected, { uid: 'bench-validate' })),
};
const combos = [
  { peer: 'floor: node:http, same JSON', mode: 'floor', path: '/mutate' },
  { peer: 'sluice /mutate', mode: 'sluice', path: '/mutate' },
  { peer: 'floor: node:http, same JSON', mode: 'floor', path: '/validate' },
  { peer: 'sluice /validate', mode: 'sluice', path: '/validate' },
] as const;

const peers = { floor: await startPeer('floor', tlsDir), sluice: await startPeer('sluice', tlsDir) };
const pools = {
  floor: new Pool(`https://127.0.0.1:${peers.floor.port}`, { connections: CONCURRENCY, connect: { ca: ca.certPem, servername: 'localhost' } }),
  sluice: new Pool(`https://127.0.0.1:${peers.sluice.port}`, { connections: CONCURRENCY, connect: { ca: ca.certPem, servername: 'localhost' } }),
};
const rows: Row[] = [];
try {
  for (const c of combos) await drive(pools[c.mode], c.path, bodies[c.path], 2000, CONCURRENCY); // warm-up: JIT, TLS sessions
  const modes = [
    { label: `${CONCURRENCY}`, total: REQUESTS, run: (c: (typeof combos)[number], n: number) => drive(pools[c.mode], c.path, bodies[c.path], n, CONCURRENCY) },
    { label: `≤${CONCURRENCY} @${RATE}/s`, total: Math.min(REQUESTS, RATE * 6), run: (c: (typeof combos)[number], n: number) => driveAtRate(pools[c.mode], c.path, bodies[c.path], n, RATE, CONCURRENCY) },
    { label: '1', total: SERIAL, run: (c: (typeof combos)[number], n: number) => drive(pools[c.mode], c.path, bodies[c.path], n, 1) },
  ];
  for (const mode of modes) {
    const acc = combos.map(() => ({ seconds: 0, latencies: [] as number[] }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of combos.entries()) {
        const r = await mode.run(c, Math.ceil(mode.total / ROUNDS));
        acc[i]!.seconds += r.seconds;
        acc[i]!.latencies.push(...r.latencies);
      }
    }
    for (const [i, c] of combos.entries()) {
      const sorted = acc[i]!.latencies.sort((a, b) => a - b);
      rows.push({ peer: `${c.peer} ${c.path === '/validate' ? '(validate body)' : '(mutate body)'}`, load: mode.label, requests: sorted.length, perSecond: sorted.length / acc[i]!.seconds, p50ms: percentile(sorted, 0.5), p99ms: percentile(sorted, 0.99) });
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
}

/**
 * One peer alone under --cpu-prof: warmed up, then PROFILE_REQUESTS reviews per path at CONCURRENCY in
 * flight; only the samples of that window count. The figures are CPU per review, so the two peers
 * compare even though their runs did not overlap.
 */
async function profilePeer(mode: 'floor' | 'sluice'): Promise<ProfileRun> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-bench-webhook-prof-${mode}-`));
  const spawned = performance.now();
  const peer = await startPeer(mode, tlsDir, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250']);
  const pool = new Pool(`https://127.0.0.1:${peer.port}`, { connections: CONCURRENCY, connect: { ca: ca.certPem, servername: 'localhost' } });
  let window: { fromMs: number; toMs: number };
  try {
    for (const path of ['/mutate', '/validate'] as const) await drive(pool, path, bodies[path], 2000, CONCURRENCY);
    const from = performance.now();
    for (const path of ['/mutate', '/validate'] as const) await drive(pool, path, bodies[path], PROFILE_REQUESTS, CONCURRENCY);
    window = { fromMs: from - spawned, toMs: performance.now() - spawned };
  } finally {
    await pool.close();
    const exited = new Promise((resolve) => peer.child.once('exit', resolve));
    peer.child.kill('SIGTERM');
    await exited;
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${mode} wrote no CPU profile in ${dir}`);
  const text = readFileSync(join(dir, file), 'utf8');
  if (values['profile-dir']) {
    mkdirSync(values['profile-dir'], { recursive: true });
    writeFileSync(join(values['profile-dir'], `webhook-${mode}.cpuprofile`), text);
  }
  rmSync(dir, { recursive: true, force: true });
  return { mode, requests: 2 * PROFILE_REQUESTS, summary: summarizeCpuProfile(JSON.parse(text) as CpuProfile, { root: ROOT, top: 15, window, hotspots: HOTSPOTS }) };
}

const profiles: ProfileRun[] = [];
try {
  if (PROFILE_REQUESTS > 0) for (const mode of ['floor', 'sluice'] as const) profiles.push(await profilePeer(mode));
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
const config = parseWebhookConfig({ sidecar: { image: 'ghcr.io/sluice-dev/sluice:bench', tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }] } });
const ctx = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };
const pures = [pure('planInjection (pure, no I/O)', () => planInjection(plain, ctx, config)), pure('guardPodCreate (pure, no I/O)', () => guardPodCreate(injected, ctx, config))];

const num = (n: number, d = 2) => n.toFixed(d).padStart(10);
console.log(`\nwebhook benchmark — HTTPS keep-alive, node ${process.version}, ${ROUNDS} interleaved rounds per peer`);
console.log(`AdmissionReview bodies: mutate ${bodies['/mutate'].length} B, validate ${bodies['/validate'].length} B\n`);
console.log(`${'peer'.padEnd(44)} ${'load'.padStart(12)} ${'reviews/s'.padStart(10)} ${'p50 ms'.padStart(10)} ${'p99 ms'.padStart(10)}  vs floor`);
rows.forEach((r, i) => {
  const floor = rows[i - (i % 2)]!;
  const ratio = i % 2 ? `p50 ${(r.p50ms / floor.p50ms).toFixed(2)}x  p99 ${(r.p99ms / floor.p99ms).toFixed(2)}x  rps ${(r.perSecond / floor.perSecond).toFixed(2)}x` : '(floor)';
  console.log(`${r.peer.padEnd(44)} ${r.load.padStart(12)} ${num(r.perSecond, 0)} ${num(r.p50ms)} ${num(r.p99ms)}  ${ratio}`);
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
const us = (ms: number, p: ProfileRun) => ((ms * 1000) / p.requests).toFixed(1).padStart(10);
for (const p of profiles) {
  const s = p.summary;
  console.log(`\n${p.mode} CPU profile: ${p.requests} reviews (half mutate, half validate) at ${CONCURRENCY} in flight, busy ${s.busyMs.toFixed(0)} ms ⇒ ${us(s.busyMs, p)} µs CPU per review`);
  for (const a of s.byArea.filter((x) => x.pctOfBusy >= 1)) console.log(`  ${a.area.padEnd(52)} ${us(a.selfMs, p)} µs/review ${a.pctOfBusy.toFixed(1).padStart(6)} %`);
  if (p.mode === 'sluice') {
    console.log('  hot spots (inclusive):');
    for (const h of s.hotspots) console.log(`  ${h.label.padEnd(52)} ${us(h.totalMs, p)} µs/review ${h.pctOfBusy.toFixed(1).padStart(6)} %`);
  }
  console.log('  top self time:');
  for (const f of s.topSelf.slice(0, 12)) console.log(`  ${`${f.name} ${f.where}`.slice(0, 52).padEnd(52)} ${us(f.selfMs, p)} µs/review ${f.pctOfBusy.toFixed(1).padStart(6)} %`);
}
if (profiles.length === 2) {
  const [floor, sluice] = profiles as [ProfileRun, ProfileRun];
  const f = floor.summary.busyMs / floor.requests;
  const s = sluice.summary.busyMs / sluice.requests;
  console.log(`\nCPU per review: sluice ${(s * 1000).toFixed(0)} µs, floor ${(f * 1000).toFixed(0)} µs (${(s / f).toFixed(2)}×)`);
}
console.log('');
console.log('(closed loop: 50 always in flight, so latency ≈ 50 / throughput — queueing on one core; open loop: arrivals at a fixed rate, latency from arrival)');
console.log(JSON.stringify({ bench: 'webhook', node: process.version, rows, pure: pures, cpuPerReviewUs: Object.fromEntries(profiles.map((p) => [p.mode, (p.summary.busyMs * 1000) / p.requests])) }));
