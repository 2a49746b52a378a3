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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { TestCA } from '../../e2e/support/kube/pki.ts';
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
  },
});
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const SERIAL = Number(values.serial);
const RATE = Number(values.rate);
const SERVER = join(import.meta.dirname, 'server.ts');

interface Row {
  peer: string;
  /** Concurrency of a closed loop, or the in-flight cap and arrival rate of the open loop. */
  load: string;
  requests: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
}

async function startPeer(mode: 'floor' | 'sluice', tlsDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [SERVER, mode, tlsDir], { stdio: ['ignore', 'pipe', 'inherit'] });
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
console.log('(closed loop: 50 always in flight, so latency ≈ 50 / throughput — queueing on one core; open loop: arrivals at a fixed rate, latency from arrival)');
console.log(JSON.stringify({ bench: 'webhook', node: process.version, rows, pure: pures }));
