// Audit benchmark, peers side by side in one run, the benchmark process pinned to one core (Loki,
// a separate process, runs on the others):
//   floor                 — the same events as NDJSON through a buffered file stream (no chain, no sync)
//   spool fsync=none/interval/always — AuditRecorder.record() into the spool, C records in flight
//   spool → Loki          — record + ship to the real Loki until the store acknowledged every event
//                           (protobuf+snappy, protobuf as uncompressed snappy literals, JSON), then read
//                           back: zero loss is checked, not assumed
//   ship backlog          — the shipper alone draining a spool written while the store was away
// record() latency (p50/p99) is what the proxy adds to a request by awaiting the audit write.
// syncs/ev is how many segment fdatasyncs the spool made per recorded event (group commit: below 1
// once records are in flight together; with fsync always each is one O_DSYNC write). The disk's
// durability floor (bench/audit/fsync-floor.ts: one durable 700-byte append at a time, the old
// write + fdatasync and the spool's pre-zeroed O_DSYNC write) is measured in the same run and
// printed under the table. --only spool runs just the floor and the spool peers.
//   node bench/audit/run.ts [--events N] [--concurrency C] [--no-pin] [--only spool]
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditRecord } from '../../api/src/index.ts';
import { verifyChain } from '../../lib/src/audit/chain.ts';
import type { AuditConfigInput } from '../../sidecar/src/audit/config.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { VictoriaLogsServer } from '../../e2e/support/logstore/victoria-logs.ts';
import { formatFloorRow, measureFsyncFloor } from './fsync-floor.ts';
import type { FloorRow } from './fsync-floor.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    'no-pin': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const N = Number(values.events);
const C = Number(values.concurrency);

const pod = { namespace: 'agents', name: 'agent-bench-7f9c', service_account: 'agent' };
/** A typical request event: git push with facts, decision, bytes and timings (about 700 bytes chained). */
function sample(i: number): AuditRecord {
  return {
    kind: i % 2 ? 'response' : 'request',
    pod,
    creator: { username: 'alice@example.com', groups: ['dev', 'system:authenticated'] },
    request_id: `r-${i >> 1}`,
    request: {
      method: 'POST',
      scheme: 'https',
      host: 'github.com',
      port: 443,
      path: `/org/repo-${i % 97}.git/git-receive-pack`,
      facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: `org/repo-${i % 97}` } },
    },
    decision: { action: 'allow', code: 'git.push_allowed', reason: 'push to an allow-listed repository', revision: 'a1b2c3d4e5f6' },
    ...(i % 2 ? { status: 200, masking: [{ rule: 'github_token', direction: 'response' as const, offset: 120 }] } : {}),
    bytes: { in: 5120 + i, out: 2048 },
    timings: { policy: 0.08, upstream: 41.7, total: 42.3 },
  };
}

interface Row {
  peer: string;
  events: number;
  seconds: number;
  perSecond: number;
  /** CPU (user + system, every thread) this process spent per event: the one-core cost. */
  cpuMicros?: number;
  p50ms?: number;
  p99ms?: number;
  /** Segment fdatasyncs per event recorded. */
  syncsPerEvent?: number;
  note?: string;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const scratch = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
let dirCount = 0;
const freshDir = (): string => join(scratch, `d${dirCount++}`);

async function floor(): Promise<Row> {
  const out = createWriteStream(join(freshDir() + '.ndjson'));
  const c0 = cpuNow();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const line = `${JSON.stringify({ ...sample(i), v: 1, id: `id-${i}`, time: new Date().toISOString(), session: 's', seq: i })}\n`;
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const seconds = (performance.now() - t0) / 1000;
  return { peer: 'floor: NDJSON file stream', events: N, seconds, perSecond: N / seconds, cpuMicros: (cpuNow() - c0) / N };
}

/** Records N events with C in flight; returns the row and the recorder (still running). */
async function recordAll(peer: string, config: AuditConfigInput): Promise<{ row: Row; recorder: AuditRecorder; t0: number; c0: number }> {
  const recorder = new AuditRecorder(config);
  await recorder.start();
  const s0 = recorder.syncs;
  const latencies = new Float64Array(N);
  let next = 0;
  const c0 = cpuNow();
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const s = process.hrtime.bigint();
      await recorder.record(sample(i));
      latencies[i] = Number(process.hrtime.bigint() - s) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort();
  const row = { peer, events: N, seconds, perSecond: N / seconds, cpuMicros: (cpuNow() - c0) / N, p50ms: percentile(latencies, 0.5), p99ms: percentile(latencies, 0.99), syncsPerEvent: (recorder.syncs - s0) / N };
  return { row, recorder, t0, c0 };
}

const spoolLimits = { maxBytes: 2 * 1024 * 1024 * 1024, segmentBytes: 16 * 1024 * 1024 };
const lokiBatch = { batchMaxEvents: 5000, batchMaxBytes: 2 * 1024 * 1024, lingerMs: 5 };

async function spoolOnly(fsync: 'none' | 'interval' | 'always'): Promise<Row> {
  const { row, recorder } = await recordAll(`spool fsync=${fsync}`, { spoolDir: freshDir(), pod, spool: { ...spoolLimits, fsync } });
  await recorder.stop();
  return row;
}

async function checkStore(vlogs: VictoriaLogsServer, session: string, expected: number): Promise<string> {
  const stored = await vlogs.session(session);
  const result = verifyChain(
    stored.map((s) => s.value),
    { session, requireEnd: true },
  );
  if (!result.ok) throw new Error(`chain broken in the store: ${result.fault.message}`);
  if (result.count !== expected) throw new Error(`store holds ${result.count} events, expected ${expected}`);
  return `${result.count} in store, chain verified, 0 lost`;
}

async function toLoki(vlogs: VictoriaLogsServer, encoding: 'protobuf' | 'json', compression: 'snappy' | 'none' = 'snappy'): Promise<Row[]> {
  const session = `bench-${encoding}-${compression}-${Date.now()}`;
  const label = encoding === 'json' ? 'json' : `protobuf+${compression === 'snappy' ? 'snappy' : 'uncompressed'}`;
  const { row, recorder, t0, c0 } = await recordAll(`record (fsync=always) + ship, ${label}`, {
    spoolDir: freshDir(),
    pod,
    session,
    spool: spoolLimits,
    loki: { url: vlogs.pushUrl, encoding, compression, ...lokiBatch },
  });
  if (!(await recorder.whenShipped(AbortSignal.timeout(600_000)))) throw new Error('shipping did not finish');
  const seconds = (performance.now() - t0) / 1000;
  const cpuMicros = (cpuNow() - c0) / N;
  await recorder.stop({ drainTimeoutMs: 60_000 });
  const note = await checkStore(vlogs, session, N + 2);
  return [row, { peer: `spool → Loki acknowledged, ${label}`, events: N, seconds, perSecond: N / seconds, cpuMicros, note }];
}

async function backlog(vlogs: VictoriaLogsServer): Promise<Row> {
  const session = `bench-backlog-${Date.now()}`;
  const spoolDir = freshDir();
  const { recorder } = await recordAll('fill', { spoolDir, pod, session, spool: { ...spoolLimits, fsync: 'none' } });
  await recorder.stop();
  const shipper = new AuditRecorder({ spoolDir, pod, session, spool: spoolLimits, loki: { url: vlogs.pushUrl, ...lokiBatch } });
  const c0 = cpuNow();
  const t0 = performance.now();
  await shipper.start();
  if (!(await shipper.whenShipped(AbortSignal.timeout(600_000)))) throw new Error('backlog did not drain');
  const seconds = (performance.now() - t0) / 1000;
  const cpuMicros = (cpuNow() - c0) / N;
  await shipper.stop({ drainTimeoutMs: 60_000 });
  const note = await checkStore(vlogs, session, N + 4);
  return { peer: 'ship backlog only (protobuf)', events: N, seconds, perSecond: N / seconds, cpuMicros, note };
}

const vlogs = await VictoriaLogsServer.start();
let pinned = 'not pinned';
if (!values['no-pin']) {
  // Pin this process (every thread, and threads created later) to CPU 0; Loki keeps the others.
  const res = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { encoding: 'utf8' });
  pinned = res.status === 0 ? 'benchmark pinned to CPU 0 (taskset), Loki on the other CPUs' : `taskset failed: ${res.stderr.trim()}`;
}
const rows: Row[] = [];
let fsyncFloor: FloorRow[] = [];
const add = (...done: Row[]): void => {
  for (const r of done) console.error(`  ${r.peer}: ${r.perSecond.toFixed(0)} events/s`);
  rows.push(...done);
};
try {
  await spoolOnly('none'); // warm-up: JIT, page cache
  add(await floor());
  add(await spoolOnly('none'));
  add(await spoolOnly('interval'));
  add(await spoolOnly('always'));
  if (values.only !== 'spool') {
    add(...(await toLoki(vlogs, 'protobuf')));
    add(...(await toLoki(vlogs, 'protobuf', 'none')));
    add(...(await toLoki(vlogs, 'json')));
    add(await backlog(vlogs));
  }
  fsyncFloor = await measureFsyncFloor({ appends: 500, rounds: 2, dir: scratch });
} catch (err) {
  console.error(`benchmark failed: ${String(err)}\nstore log tail:\n${vlogs.logTail(20)}`);
  process.exitCode = 1;
} finally {
  await vlogs.stop();
  rmSync(scratch, { recursive: true, force: true });
}

const floorRate = rows[0]!.perSecond;
const num = (n: number | undefined, d = 2): string => (n === undefined ? '-' : n.toFixed(d)).padStart(9);
console.log(`\naudit benchmark — ${N} events per peer, ${C} record() calls in flight, node ${process.version}; ${pinned}\n`);
console.log(`${'peer'.padEnd(50)} ${'events/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'CPU µs/ev'.padStart(9)} ${'ev/CPU-s'.padStart(9)} ${'syncs/ev'.padStart(9)}  vs floor  notes`);
for (const r of rows) {
  const perCpuSecond = r.cpuMicros ? 1e6 / r.cpuMicros : undefined;
  console.log(
    `${r.peer.padEnd(50)} ${num(r.perSecond, 0)} ${num(r.p50ms, 3)} ${num(r.p99ms, 3)} ${num(r.cpuMicros, 1)} ${num(perCpuSecond, 0)} ${num(r.syncsPerEvent, 3)}  ${(r.perSecond / floorRate).toFixed(2).padStart(7)}x  ${r.note ?? ''}`,
  );
}
console.log('events/s is wall-clock throughput; ev/CPU-s is what one core sustains by this process\'s CPU time (Loki excluded).');
console.log(`\nfsync floor of this disk (${tmpdir()}): one durable 700-byte append at a time, what one record in flight pays per sync`);
for (const f of fsyncFloor) console.log(`  ${formatFloorRow(f)}`);
const shipped = rows.filter((r) => r.peer.startsWith('spool → Loki'));
if (values.only === 'spool') console.log('(--only spool: the shipping target is not measured)');
else {
const worst = shipped.length ? Math.min(...shipped.map((r) => r.perSecond)) : 0;
const best = shipped.length ? Math.max(...shipped.map((r) => r.perSecond)) : 0;
  console.log(
    `\ntarget ≥ 20000 events/s shipped with zero loss: ${best >= 20_000 ? 'met' : 'NOT met'} (end-to-end ${worst.toFixed(0)}–${best.toFixed(0)} events/s over the encodings)`,
  );
}
console.log(JSON.stringify({ bench: 'audit', events: N, concurrency: C, pinned, results: rows, fsyncFloor }));
