// The recorder over a real spool directory (no store): group commit, resume after restart with
// no gap and no duplicate link, fail-closed and drop on a full spool, metrics, bad records.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AuditEvent, AuditRecord } from '../../../api/src/index.ts';
import { verifyChain } from '../../src/audit/chain.ts';
import { registerAuditMetrics } from '../../src/audit/metrics.ts';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import type { AuditConfigInput } from '../../src/audit/config.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-recorder-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const pod = { namespace: 'agents', name: 'agent-1' };
const request = (i: number): AuditRecord => ({
  kind: 'request',
  pod,
  request_id: `r-${i}`,
  request: { method: 'GET', scheme: 'https', host: 'registry.npmjs.org', port: 443, path: `/pkg-${i}` },
  decision: { action: 'allow', code: 'registry.read', reason: 'package registries are read-only' },
});

function config(extra: Partial<AuditConfigInput> = {}): AuditConfigInput {
  return { spoolDir: dir, pod, ...extra };
}

/** Every event in the spool directory, in file order. */
function spooled(): AuditEvent[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('seg-'))
    .sort()
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as AuditEvent);
}

let ids = 0;
const deps = () => ({ newId: () => `id-${++ids}`, newSessionId: () => 'sess-1', clock: () => 1_700_000_000_000 });

describe('AuditRecorder (spool only)', () => {
  it('starts a session, chains concurrent records in call order, and ends it', async () => {
    const rec = new AuditRecorder(config(), deps());
    const info = await rec.start();
    expect(info).toEqual({ session: 'sess-1', resumed: false, seq: 0, truncatedBytes: 0 });
    const events = await Promise.all(Array.from({ length: 300 }, (_, i) => rec.record(request(i))));
    expect(events.map((e) => e!.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(events.map((e) => e!.request_id)).toEqual(Array.from({ length: 300 }, (_, i) => `r-${i}`));
    expect(rec.lastDurable).toEqual({ seq: 300, hash: events[299]!.hash });
    expect(await rec.stop()).toEqual({ shipped: false });
    const all = spooled();
    expect(all[0]!.kind).toBe('session_start');
    expect(all.at(-1)!.kind).toBe('session_end');
    expect(verifyChain(all, { requireEnd: true })).toMatchObject({ ok: true, count: 302 });
  });

  it('resolves each record with exactly the event that was written', async () => {
    const rec = new AuditRecorder(config(), deps());
    await rec.start();
    const ev = await rec.record(request(7));
    await rec.stop();
    expect(spooled().find((e) => e.seq === ev!.seq)).toEqual(ev);
  });

  it('resumes the same session after a restart with no gap and no duplicate link', async () => {
    const first = new AuditRecorder(config(), deps());
    await first.start();
    for (let i = 0; i < 5; i++) await first.record(request(i));
    // No stop(): the process "dies" with the spool as it is.
    const second = new AuditRecorder(config(), { ...deps(), newSessionId: () => 'must-not-be-used' });
    const info = await second.start();
    expect(info).toMatchObject({ session: 'sess-1', resumed: true, seq: 6 });
    await second.record(request(5));
    await second.stop();
    const all = spooled();
    expect(all.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(all[6]).toMatchObject({ kind: 'session_start', detail: { resumed: true } });
    expect(verifyChain(all)).toMatchObject({ ok: true, count: 9, ended: true });
  });

  it('starts a new chain when configured with another session, keeping the old one intact', async () => {
    const first = new AuditRecorder(config(), deps());
    await first.start();
    await first.record(request(0));
    await first.stop();
    const second = new AuditRecorder(config({ session: 'sess-2' }), deps());
    expect(await second.start()).toMatchObject({ session: 'sess-2', resumed: false, seq: 0 });
    await second.stop();
    const all = spooled();
    expect(verifyChain(all.filter((e) => e.session === 'sess-1'))).toMatchObject({ ok: true, count: 3 });
    expect(verifyChain(all.filter((e) => e.session === 'sess-2'))).toMatchObject({ ok: true, count: 2 });
    expect(all.find((e) => e.session === 'sess-2')!.detail).toEqual({ resumed: false, previous_session: 'sess-1' });
  });

  it('fails closed when the spool is full: audit.spool_full, counted, chain unbroken', async () => {
    const registry = new Registry();
    const metrics = registerAuditMetrics(registry);
    const rec = new AuditRecorder(config({ spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 } }), { ...deps(), metrics });
    await rec.start();
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      try {
        await rec.record(request(i));
        ok++;
      } catch (err) {
        expect(err).toMatchObject({ code: 'audit.spool_full', retryable: true });
        refused++;
      }
    }
    expect(ok).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(0);
    const text = await registry.metrics();
    expect(text).toContain(`sluice_audit_append_errors_total{code="audit.spool_full"} ${refused}`);
    expect(text).toContain(`sluice_audit_events_written_total ${ok + 1}`);
    expect(text).toMatch(/sluice_audit_spool_bytes [1-9]\d*/);
    // What the SluiceAuditSpoolNearFull alert divides: it refused at the capacity it exports.
    expect(text).toContain(`sluice_audit_spool_capacity_bytes ${64 * 1024}`);
    const held = Number(/^sluice_audit_spool_bytes (\d+)/m.exec(text)![1]);
    expect(held / (64 * 1024)).toBeGreaterThan(0.8);
    await rec.stop();
    // session_start, the accepted records, and session_end (the recorder's own events may pass the bound).
    expect(verifyChain(spooled(), { requireEnd: true })).toMatchObject({ ok: true, count: ok + 2 });
    // A restart on the full spool still starts (its shipper is what would drain it) and keeps failing closed.
    const again = new AuditRecorder(config({ spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 } }), deps());
    expect(await again.start()).toMatchObject({ resumed: true });
    await expect(again.record(request(0))).rejects.toMatchObject({ code: 'audit.spool_full' });
    await again.stop();
    expect(verifyChain(spooled(), { requireEnd: true })).toMatchObject({ ok: true, count: ok + 4 });
  });

  it('with onFull drop: resolves undefined and counts instead of failing, chain unbroken', async () => {
    const registry = new Registry();
    const metrics = registerAuditMetrics(registry);
    const rec = new AuditRecorder(config({ spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, onFull: 'drop' } }), { ...deps(), metrics });
    await rec.start();
    const results = [];
    for (let i = 0; i < 400; i++) results.push(await rec.record(request(i)));
    const dropped = results.filter((r) => r === undefined).length;
    expect(dropped).toBeGreaterThan(0);
    expect(await registry.metrics()).toContain(`sluice_audit_events_dropped_total{reason="spool_full"} ${dropped}`);
    await rec.stop();
    expect(verifyChain(spooled(), { requireEnd: true })).toMatchObject({ ok: true, count: 400 - dropped + 2 });
  });

  it('refuses records before start and after stop with audit.not_running', async () => {
    const rec = new AuditRecorder(config(), deps());
    await expect(rec.record(request(0))).rejects.toMatchObject({ code: 'audit.not_running' });
    await rec.start();
    await rec.stop();
    await expect(rec.record(request(0))).rejects.toMatchObject({ code: 'audit.not_running' });
  });

  it('refuses a record that breaks the schema with audit.bad_record and keeps chaining', async () => {
    const rec = new AuditRecorder(config(), deps());
    await rec.start();
    const bad = { ...request(0), decision: { action: 'maybe', code: 'x', reason: 'y' } } as unknown as AuditRecord;
    const nan = { ...request(1), timings: { total: Number.NaN } };
    const [a, b, c] = await Promise.allSettled([rec.record(bad), rec.record(nan), rec.record(request(2))]);
    expect(a).toMatchObject({ status: 'rejected', reason: { code: 'audit.bad_record', retryable: false } });
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'audit.bad_record' } });
    expect(c).toMatchObject({ status: 'fulfilled', value: { seq: 1 } });
    await rec.stop();
    expect(verifyChain(spooled())).toMatchObject({ ok: true, count: 3 });
  });

  it('rejects a bad config naming the field', () => {
    expect(() => new AuditRecorder({ spoolDir: dir, pod, spool: { fsync: 'sometimes' } } as unknown as AuditConfigInput)).toThrow(/spool\.fsync/);
    expect(() => new AuditRecorder({ spoolDir: dir, pod, loki: { url: 'not a url' } })).toThrow(/loki\.url/);
    expect(() => new AuditRecorder({ spoolDir: dir, pod, session: 'has space' })).toThrow(/session/);
  });
});
