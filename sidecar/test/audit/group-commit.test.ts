// Group commit with fsync `always`, over a real spool directory and the real O_DSYNC segment
// write: records in flight together share one durable write, and none resolves before a write
// that covers its bytes has completed on disk. The write is wrapped (never replaced) so the test
// can hold it, count it, see how far into the segment it reached, check its handle is O_DSYNC,
// and make one fail: a failed write rejects every record of its batch (fail closed), is counted
// and logged, leaves no trace of the batch in the chain, and the next batch is written as usual.
import { constants, readdirSync, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AuditEvent } from '../../../api/src/index.ts';
import { verifyChain } from '../../../lib/src/audit/chain.ts';
import { AuditError } from '../../../lib/src/audit/errors.ts';
import { registerAuditMetrics } from '../../src/audit/metrics.ts';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import { pod, requestRecord, spoolDirPerTest } from '../support/audit-fixtures.ts';

const spoolDir = spoolDirPerTest('sluice-group-commit-');
const request = requestRecord;

let ids = 0;
const deps = () => ({ newId: () => `id-${++ids}`, newSessionId: () => 'sess-1', clock: () => 1_700_000_000_000 });

/** The one segment's lines with the byte offset just after each (what a sync must cover). */
function segmentLines(): { event: AuditEvent; end: number }[] {
  const segs = readdirSync(spoolDir()).filter((n) => n.startsWith('seg-'));
  expect(segs).toHaveLength(1);
  const out: { event: AuditEvent; end: number }[] = [];
  let end = 0;
  for (const line of readFileSync(join(spoolDir(), segs[0]!), 'utf8').split('\n')) {
    if (!line) continue;
    end += Buffer.byteLength(line) + 1;
    out.push({ event: JSON.parse(line) as AuditEvent, end });
  }
  return out;
}

/** The handle was opened O_DSYNC: a write on it returns once its bytes are on disk (Linux fdinfo). */
function isDsync(fh: FileHandle): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fh.fd}`, 'utf8'))![1]!;
  return (parseInt(flags, 8) & constants.O_DSYNC) !== 0;
}

/**
 * The spool's real segment write, wrapped (with fsync always the segment is O_DSYNC, so a write
 * that resolved is on disk: it is the group's sync). `covered` is the end of the last completed
 * write; `dsync` says for each call whether its handle was O_DSYNC; `hold()` makes the next write
 * wait until released; `failCall` makes that call write its bytes and then fail with EIO, the way
 * a failed flush leaves bytes in the file it could not make durable.
 */
function syncProbe() {
  const probe = {
    calls: 0,
    covered: 0,
    dsync: [] as boolean[],
    /** The number of the write call that fails (with EIO) after writing. */
    failCall: undefined as number | undefined,
    held: undefined as { entered: () => void; release: Promise<void> } | undefined,
    hold(): { entered: Promise<void>; release: () => void } {
      let entered!: () => void;
      let release!: () => void;
      const enteredP = new Promise<void>((r) => (entered = r));
      const releaseP = new Promise<void>((r) => (release = r));
      probe.held = { entered, release: releaseP };
      return { entered: enteredP, release };
    },
    write: async (fh: FileHandle, data: Buffer, offset: number, length: number, position: number): Promise<number> => {
      const call = ++probe.calls;
      probe.dsync.push(isDsync(fh));
      const held = probe.held;
      probe.held = undefined;
      if (held) {
        held.entered();
        await held.release;
      }
      const { bytesWritten } = await fh.write(data, offset, length, position);
      if (call === probe.failCall) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO', errno: -5, syscall: 'write' });
      probe.covered = Math.max(probe.covered, position + bytesWritten);
      return bytesWritten;
    },
  };
  return probe;
}

describe('AuditRecorder group commit (fsync always)', () => {
  it('records in flight together share one durable (O_DSYNC) write, and each resolves only after a write covering its line', async () => {
    const probe = syncProbe();
    const rec = new AuditRecorder({ spoolDir: spoolDir(), pod, spool: { fsync: 'always' } }, { ...deps(), write: probe.write });
    await rec.start();
    const before = probe.calls;
    expect(before).toBe(1); // session_start
    const coveredAt = new Map<string, number>();
    const track = (p: Promise<AuditEvent | undefined>) =>
      p.then((ev) => {
        coveredAt.set(ev!.id, probe.covered);
        return ev!;
      });
    // The first record's sync is held: everything recorded meanwhile waits for the next sync.
    const { entered, release } = probe.hold();
    const first = track(rec.record(request(0)));
    await entered;
    const rest = Array.from({ length: 39 }, (_, i) => track(rec.record(request(i + 1))));
    await Promise.resolve();
    expect(coveredAt.size).toBe(0); // nothing resolves while its sync has not completed
    release();
    const events = [await first, ...(await Promise.all(rest))];
    const syncs = probe.calls - before;
    expect(syncs).toBe(2); // 40 records, 2 durable writes: the held one and one for the 39 behind it
    expect(rec.syncs).toBe(3);
    // Each of them was the sync: the segment is O_DSYNC.
    expect(probe.dsync).toEqual([true, true, true]);
    await rec.stop();
    const lines = segmentLines();
    for (const ev of events) {
      const line = lines.find((l) => l.event.id === ev.id)!;
      expect(line.event).toEqual(ev);
      expect(coveredAt.get(ev.id)).toBeGreaterThanOrEqual(line.end);
    }
    expect(verifyChain(lines.map((l) => l.event), { requireEnd: true })).toMatchObject({ ok: true, count: 42 });
  });

  it('a failed durable write rejects every record of its batch (audit.spool_io, counted, logged), leaves no trace, and later batches are written', async () => {
    const probe = syncProbe();
    const registry = new Registry();
    const metrics = registerAuditMetrics(registry);
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const log = { info: () => undefined, warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
    const rec = new AuditRecorder({ spoolDir: spoolDir(), pod, spool: { fsync: 'always' } }, { ...deps(), metrics, log, write: probe.write });
    await rec.start();
    const { entered, release } = probe.hold();
    const first = rec.record(request(0));
    await entered;
    const batch = Array.from({ length: 20 }, (_, i) => rec.record(request(i + 1)).then(
      () => 'resolved',
      (err: unknown) => err,
    ));
    // The held sync is the one that fails: it is record 0's alone; the 20 queued behind it wait for the next.
    probe.failCall = probe.calls;
    release();
    await expect(first).rejects.toMatchObject({ code: 'audit.spool_io', errno: 'EIO' });
    const outcomes = await Promise.all(batch);
    // The 20 were chained after record 0 but never written with it: re-chained from the durable head and synced.
    expect(outcomes.every((o) => o === 'resolved')).toBe(true);
    // Now fail a batch of 10 records that all wait on one sync.
    const second = probe.hold();
    const lead = rec.record(request(100));
    await second.entered;
    probe.failCall = probe.calls + 1; // the sync of the 10 queued behind the held one
    const failing = Array.from({ length: 10 }, (_, i) => rec.record(request(101 + i)).then(
      () => 'resolved',
      (err: unknown) => err,
    ));
    second.release();
    await lead;
    const failed = await Promise.all(failing);
    for (const f of failed) {
      expect(f).toBeInstanceOf(AuditError);
      expect(f).toMatchObject({ code: 'audit.spool_io', errno: 'EIO' });
    }
    // Later batches work: the recorder keeps running and chains from the last durable event.
    const after = await Promise.all(Array.from({ length: 5 }, (_, i) => rec.record(request(200 + i))));
    expect(after.every((e) => e !== undefined)).toBe(true);
    // Every code is exported from start-up at 0 (audit/metrics.ts): only spool_io moved.
    expect((await registry.getSingleMetric('sluice_audit_append_errors_total')!.get()).values.filter((v) => v.value > 0)).toEqual([
      expect.objectContaining({ labels: { code: 'audit.spool_io' }, value: 11 }),
    ]);
    expect(warnings.filter((w) => w.msg === 'audit spool write failed').map((w) => w.obj)).toEqual([
      expect.objectContaining({ code: 'audit.spool_io', errno: 'EIO', events: 1 }),
      expect.objectContaining({ code: 'audit.spool_io', errno: 'EIO', events: 10 }),
    ]);
    await rec.stop();
    const lines = segmentLines().map((l) => l.event);
    const ids = lines.map((e) => e.request_id).filter(Boolean);
    expect(ids).toEqual([...Array.from({ length: 20 }, (_, i) => `r-${i + 1}`), 'r-100', ...Array.from({ length: 5 }, (_, i) => `r-${200 + i}`)]);
    expect(verifyChain(lines, { requireEnd: true })).toMatchObject({ ok: true, count: lines.length });
  });
});
