// The recorder over a real spool directory (no store, or a dead one): group commit, resume after
// restart with no gap and no duplicate link, fail-closed and drop on a full spool behind a dead
// store, the ring of store none (keeps serving, trims, warns), state-change logging, metrics, bad
// records.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AuditEvent, AuditRecord } from '../../../api/src/index.ts';
import { verifyChain } from '../../../lib/src/audit/chain.ts';
import { registerAuditMetrics } from '../../src/audit/metrics.ts';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import { pod, requestRecord, spoolDirPerTest } from '../support/audit-fixtures.ts';
import { resolveStore } from '../../src/audit/config.ts';
import type { AuditConfigInput } from '../../src/audit/config.ts';

const spoolDir = spoolDirPerTest('sluice-recorder-');
const request = requestRecord;

function config(extra: Partial<AuditConfigInput> = {}): AuditConfigInput {
  return { spoolDir: spoolDir(), pod, ...extra };
}

/** Every event in the spool directory, in file order. */
function spooled(): AuditEvent[] {
  return readdirSync(spoolDir())
    .filter((n) => n.startsWith('seg-'))
    .sort()
    .flatMap((n) => readFileSync(join(spoolDir(), n), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** A loopback port nothing listens on: a store that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const deadStore = async () => ({ type: 'loki' as const, url: `http://127.0.0.1:${await closedPort()}`, retryInitialMs: 1000, retryMaxMs: 1000 });

let ids = 0;
const deps = () => ({ newId: () => `id-${++ids}`, newSessionId: () => 'sess-1', clock: () => 1_700_000_000_000 });

describe('AuditRecorder (spool only)', () => {
  it('starts a session, chains concurrent records in call order, and ends it', async () => {
    const rec = new AuditRecorder(config(), deps());
    const info = await rec.start();
    expect(info).toEqual({ session: 'sess-1', resumed: false, seq: 0, truncatedBytes: 0, store: 'none' });
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

  it('does not resume from a whole event whose predecessor never reached the disk (a torn write kept a later page)', async () => {
    const first = new AuditRecorder(config(), deps());
    await first.start();
    for (let i = 0; i < 5; i++) await first.record(request(i));
    // The process dies; of the last write only a later part persisted: seq 4 is gone, seq 5 is whole.
    const newest = readdirSync(spoolDir()).filter((n) => n.startsWith('seg-')).sort().at(-1)!;
    const path = join(spoolDir(), newest);
    const onDisk = readFileSync(path);
    const text = onDisk.subarray(0, onDisk.indexOf(0) < 0 ? onDisk.length : onDisk.indexOf(0)).toString('utf8');
    const kept = text.split('\n').filter(Boolean).filter((l) => (JSON.parse(l) as AuditEvent).seq !== 4);
    writeFileSync(path, `${kept.join('\n')}\n`);
    const second = new AuditRecorder(config(), deps());
    expect(await second.start()).toMatchObject({ session: 'sess-1', resumed: true, seq: 4 });
    await second.stop();
    const all = spooled();
    expect(all.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(verifyChain(all)).toMatchObject({ ok: true, count: 6, ended: true });
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

  it('fails closed when the spool is full behind a dead store: audit.spool_full, counted, chain unbroken', async () => {
    const registry = new Registry();
    const metrics = registerAuditMetrics(registry);
    const store = await deadStore();
    const rec = new AuditRecorder(config({ store, spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 } }), { ...deps(), metrics });
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
    await rec.stop({ drainTimeoutMs: 10 });
    // session_start, the accepted records, and session_end (the recorder's own events may pass the bound).
    expect(verifyChain(spooled(), { requireEnd: true })).toMatchObject({ ok: true, count: ok + 2 });
    // A restart on the full spool still starts (its shipper is what would drain it) and keeps failing closed.
    const again = new AuditRecorder(config({ store, spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 } }), deps());
    expect(await again.start()).toMatchObject({ resumed: true });
    await expect(again.record(request(0))).rejects.toMatchObject({ code: 'audit.spool_full' });
    await again.stop({ drainTimeoutMs: 10 });
    expect(verifyChain(spooled(), { requireEnd: true })).toMatchObject({ ok: true, count: ok + 4 });
  });

  it('with onFull drop: resolves undefined and counts instead of failing, chain unbroken', async () => {
    const registry = new Registry();
    const metrics = registerAuditMetrics(registry);
    const rec = new AuditRecorder(config({ store: await deadStore(), spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, onFull: 'drop' } }), { ...deps(), metrics });
    await rec.start();
    const results = [];
    for (let i = 0; i < 400; i++) results.push(await rec.record(request(i)));
    const dropped = results.filter((r) => r === undefined).length;
    expect(dropped).toBeGreaterThan(0);
    expect(await registry.metrics()).toContain(`sluice_audit_events_dropped_total{reason="spool_full"} ${dropped}`);
    await rec.stop({ drainTimeoutMs: 10 });
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
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, spool: { fsync: 'sometimes' } } as unknown as AuditConfigInput)).toThrow(/spool\.fsync/);
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, loki: { url: 'not a url' } })).toThrow(/loki\.url/);
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, session: 'has space' })).toThrow(/session/);
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, store: 'nowhere' } as unknown as AuditConfigInput)).toThrow(/store: expected "none" or \{type: loki\|victorialogs/);
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, store: { type: 'victorialogs', url: 'http://vl:9428', pushPath: '/loki/api/v1/push' } } as unknown as AuditConfigInput)).toThrow(
      /store: pushPath/,
    );
    expect(() => new AuditRecorder({ spoolDir: spoolDir(), pod, store: { type: 'loki', url: 'http://a:3100' }, loki: { url: 'http://loki:3100' } })).toThrow(/loki: give audit\.store \{type, url\} or the legacy audit\.loki, not both/);
    // The chart's default store: none next to a user's legacy loki block (Helm merges them): loki wins.
    expect(resolveStore(new AuditRecorder({ spoolDir: spoolDir(), pod, store: 'none', loki: { url: 'http://loki:3100' } }).config)).toMatchObject({ type: 'loki', url: 'http://loki:3100' });
  });
});

interface Logged {
  level: 'info' | 'warn';
  msg: string;
  obj: Record<string, unknown>;
}

function capture(): { logs: Logged[]; log: { info(o: object, m: string): void; warn(o: object, m: string): void } } {
  const logs: Logged[] = [];
  return {
    logs,
    log: {
      info: (obj, msg) => logs.push({ level: 'info', msg, obj: obj as Record<string, unknown> }),
      warn: (obj, msg) => logs.push({ level: 'warn', msg, obj: obj as Record<string, unknown> }),
    },
  };
}

const spoolBytes = () => readdirSync(spoolDir()).filter((n) => n.startsWith('seg-')).reduce((n, f) => n + statSync(join(spoolDir(), f)).size, 0);

describe('AuditRecorder with store none (a bounded local ring)', () => {
  it('keeps serving when the ring is full: trims the oldest events, warns at start and on the change, says so in metrics', async () => {
    const registry = new Registry();
    const { logs, log } = capture();
    const maxBytes = 64 * 1024;
    const rec = new AuditRecorder(config({ spool: { maxBytes, segmentBytes: 8 * 1024, fsync: 'none' } }), { ...deps(), metrics: registerAuditMetrics(registry), log });
    expect(await rec.start()).toMatchObject({ store: 'none' });
    expect(logs[0]).toMatchObject({ level: 'warn', obj: { store: 'none', explicit: false, ringBytes: maxBytes } });
    expect(logs[0]!.msg).toMatch(/^AUDIT EVENTS ARE NOT SHIPPED: audit\.store is not set, so it is none/);
    // Far more than the ring holds (about 200 events of ~330 bytes): every record is served.
    for (let i = 0; i < 1000; i++) expect(await rec.record(request(i))).toMatchObject({ seq: i + 1 });
    expect(spoolBytes()).toBeLessThanOrEqual(maxBytes);
    const text = await registry.metrics();
    const trimmed = Number(/^sluice_audit_events_trimmed_total (\d+)/m.exec(text)![1]);
    expect(trimmed).toBeGreaterThan(700);
    expect(text).toContain('sluice_audit_store_info{type="none"} 1');
    expect(text).toContain('sluice_audit_store_info{type="loki"} 0');
    expect(text).toContain('sluice_audit_spool_state{state="full"} 1');
    // Nothing was refused or dropped: every series of those counters (exported at 0 from start-up) is 0.
    expect(text.split('\n').filter((l) => /^sluice_audit_(append_errors|events_dropped)_total\{/.test(l) && !l.endsWith(' 0'))).toEqual([]);
    expect(text).toContain('sluice_audit_events_dropped_total{reason="spool_full"} 0');
    // The spool measures its own oldest unshipped event: the oldest one the ring still holds.
    expect(text).toMatch(/^sluice_audit_oldest_unshipped_age_seconds 0$/m);
    const changes = logs.filter((l) => l.msg.startsWith('audit spool '));
    expect(changes.map((l) => [l.level, l.obj.from, l.obj.to])).toEqual([
      ['warn', 'ok', 'near_full'],
      ['warn', 'near_full', 'full'],
    ]);
    expect(changes[1]!.msg).toMatch(/the ring is full: its oldest events are now trimmed, never shipped/);
    await rec.stop();
    // What the ring holds is an unbroken tail of the chain: every link to the one before.
    const kept = spooled();
    expect(kept.length + trimmed).toBe(1002);
    expect(kept.at(-1)!.kind).toBe('session_end');
    for (let i = 1; i < kept.length; i++) {
      expect(kept[i]!.seq).toBe(kept[i - 1]!.seq + 1);
      expect(kept[i]!.prev_hash).toBe(kept[i - 1]!.hash);
    }
    // A restart on the trimmed ring resumes the chain from its head.
    const again = new AuditRecorder(config({ store: 'none', spool: { maxBytes, segmentBytes: 8 * 1024 } }), { ...deps(), log });
    expect(await again.start()).toMatchObject({ resumed: true, seq: 1002 });
    expect(logs.filter((l) => l.msg.startsWith('AUDIT EVENTS ARE NOT SHIPPED')).at(-1)!.msg).toMatch(/^AUDIT EVENTS ARE NOT SHIPPED: audit\.store is none;/);
    await again.stop();
  }, 30_000);
});

describe('spool state changes are logged', () => {
  it('ok → behind → near_full → full with a dead store, and back to ok once the store takes the backlog', async () => {
    let accept = false;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(accept ? 204 : 503).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let now = 1_700_000_000_000;
    const { logs, log } = capture();
    const registry = new Registry();
    const rec = new AuditRecorder(
      config({ store: { type: 'victorialogs', url, retryInitialMs: 5, retryMaxMs: 20, lingerMs: 0 }, spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 } }),
      { ...deps(), clock: () => now, metrics: registerAuditMetrics(registry), log, stateCheckMs: 10, random: () => 0 },
    );
    try {
      await rec.start();
      await rec.record(request(0));
      expect(rec.spoolState).toBe('ok');
      now += 61_000;
      // The spool itself says how old its oldest unshipped event is: no shipper acknowledgement needed.
      expect(await registry.metrics()).toMatch(/^sluice_audit_oldest_unshipped_age_seconds 61$/m);
      expect(rec.spoolState).toBe('behind');
      let refused = 0;
      for (let i = 1; refused === 0 && i < 1000; i++) await rec.record(request(i)).catch(() => refused++);
      expect(refused).toBe(1);
      expect(rec.spoolState).toBe('full');
      accept = true;
      expect(await rec.whenShipped(AbortSignal.timeout(10_000))).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(rec.spoolState).toBe('ok');
      const changes = logs.filter((l) => l.msg.startsWith('audit spool ')).map((l) => [l.level, l.obj.from, l.obj.to]);
      expect(changes.slice(0, 3)).toEqual([
        ['warn', 'ok', 'behind'],
        ['warn', 'behind', 'near_full'],
        ['warn', 'near_full', 'full'],
      ]);
      expect(changes.at(-1)).toEqual(['info', expect.any(String), 'ok']);
      expect(changes.slice(3).every(([level]) => level === 'info')).toBe(true);
      expect(logs.find((l) => l.obj.to === 'full')!.msg).toMatch(/records are refused and agent requests answered 503/);
    } finally {
      await rec.stop({ drainTimeoutMs: 100 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
