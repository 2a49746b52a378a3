// The shipper's HTTP behaviour against a loopback stand-in store that decodes every push: order,
// headers, retries on 5xx/429, the JSON fallback on 415, trimming, and the `dropped` event after
// a full spool in drop mode. Loki itself is exercised in e2e/audit; this store only lets a test
// script its answers.
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AuditEvent, AuditRecord } from '../../../api/src/index.ts';
import { verifyChain } from '../../../lib/src/audit/chain.ts';
import type { LokiConfig } from '../../src/audit/config.ts';
import { decodePushBody } from '../../src/audit/loki-push.ts';
import { registerAuditMetrics } from '../../src/audit/metrics.ts';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import { isSizeRefusal, splitStreams } from '../../src/audit/shipper.ts';

interface Push {
  url: string;
  headers: IncomingMessage['headers'];
  contentType: string;
  tenant: string | undefined;
  streams: { labels: string; entries: { ts: bigint; line: string }[] }[];
}

/** A store whose answer to each push is scripted; it keeps the pushes it accepted. */
class ScriptedStore {
  readonly accepted: Push[] = [];
  readonly seen: number[] = [];
  answer: (push: Push, n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 204 });
  private readonly server: Server;
  private waiters: (() => void)[] = [];

  constructor() {
    this.server = createServer((req, res) => {
      void this.handle(req).then(({ status, headers }) => {
        res.writeHead(status, headers).end(status >= 300 ? 'scripted failure' : undefined);
        for (const w of this.waiters.splice(0)) w();
      });
    });
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; headers?: Record<string, string> }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const contentType = req.headers['content-type'] ?? '';
    const push: Push = {
      url: req.url ?? '',
      headers: req.headers,
      contentType,
      tenant: req.headers['x-scope-orgid'] as string | undefined,
      streams: decodePushBody(contentType, Buffer.concat(chunks)),
    };
    const verdict = this.answer(push, this.seen.length);
    this.seen.push(verdict.status);
    if (verdict.status >= 200 && verdict.status < 300) this.accepted.push(push);
    return verdict;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  lines(): string[] {
    return this.accepted.flatMap((p) => p.streams.flatMap((s) => s.entries.map((e) => e.line)));
  }

  events(): AuditEvent[] {
    return this.lines().map((l) => JSON.parse(l) as AuditEvent);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const pod = { namespace: 'agents', name: 'agent-1' };
const request = (i: number): AuditRecord => ({
  kind: 'request',
  pod,
  request: { method: 'GET', scheme: 'https', host: 'pypi.org', port: 443, path: `/simple/p${i}/` },
  decision: { action: 'allow', code: 'registry.read', reason: 'read-only' },
});

let dir: string;
let store: ScriptedStore;
let url: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-shipper-'));
  store = new ScriptedStore();
  url = await store.listen();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function recorder(loki: Partial<LokiConfig> = {}, spool: Record<string, unknown> = {}, registry?: Registry): AuditRecorder {
  return new AuditRecorder(
    { spoolDir: dir, pod, session: 'sess-ship', spool, loki: { url, lingerMs: 0, retryInitialMs: 1, retryMaxMs: 5, ...loki } },
    { random: () => 0, ...(registry ? { metrics: registerAuditMetrics(registry) } : {}) },
  );
}

describe('splitStreams', () => {
  it('cuts a batch in two halves by entries, keeping order and labels', () => {
    const labels = (session: string) => ({ namespace: 'n', pod: 'p', session });
    const e = (i: number) => ({ ts: BigInt(i), line: String(i) });
    const [a, b] = splitStreams([
      { labels: labels('s1'), entries: [e(1), e(2), e(3)] },
      { labels: labels('s2'), entries: [e(4), e(5)] },
    ]);
    expect(a).toEqual([{ labels: labels('s1'), entries: [e(1), e(2)] }]);
    expect(b).toEqual([
      { labels: labels('s1'), entries: [e(3)] },
      { labels: labels('s2'), entries: [e(4), e(5)] },
    ]);
  });
});

describe('LokiShipper', () => {
  it('ships every event in order as snappy protobuf with the tenant and only the three labels', async () => {
    const registry = new Registry();
    const rec = recorder({ tenant: 'team-a', batchMaxEvents: 7 }, {}, registry);
    await rec.start();
    await Promise.all(Array.from({ length: 50 }, (_, i) => rec.record(request(i))));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    const events = store.events();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 52 }, (_, i) => i));
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true, count: 52 });
    expect(store.accepted.every((p) => p.contentType === 'application/x-protobuf' && p.tenant === 'team-a')).toBe(true);
    expect(new Set(store.accepted.flatMap((p) => p.streams.map((s) => s.labels)))).toEqual(
      new Set(['{namespace="agents", pod="agent-1", session="sess-ship"}']),
    );
    expect(Math.max(...store.accepted.map((p) => p.streams[0]!.entries.length))).toBeLessThanOrEqual(7);
    const text = await registry.metrics();
    expect(text).toContain('sluice_audit_events_shipped_total 52');
    expect(text).toContain('sluice_audit_oldest_unshipped_age_seconds 0');
  });

  it('retries 500 and 429 answers until accepted, losing and reordering nothing', async () => {
    const registry = new Registry();
    store.answer = (_p, n) => (n % 3 === 0 ? { status: 500 } : n % 3 === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 204 });
    const rec = recorder({ batchMaxEvents: 5 }, {}, registry);
    await rec.start();
    for (let i = 0; i < 30; i++) await rec.record(request(i));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    expect(store.seen.filter((s) => s >= 500 || s === 429).length).toBeGreaterThan(5);
    expect(verifyChain(store.events(), { requireEnd: true })).toMatchObject({ ok: true, count: 32, duplicates: 0 });
    const text = await registry.metrics();
    expect(text).toMatch(/sluice_audit_pushes_total\{outcome="retry_status"\} [1-9]/);
    expect(text).toMatch(/sluice_audit_events_retried_total [1-9]/);
  });

  it('falls back to JSON when the store answers 415 to protobuf', async () => {
    store.answer = (p) => (p.contentType === 'application/x-protobuf' ? { status: 415 } : { status: 204 });
    const rec = recorder();
    await rec.start();
    await rec.record(request(0));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    expect(store.accepted.every((p) => p.contentType === 'application/json')).toBe(true);
    expect(verifyChain(store.events(), { requireEnd: true })).toMatchObject({ ok: true, count: 3 });
  });

  it.each([413, 500])('splits a batch the store keeps refusing (%i for more than 8 events) and still delivers in order', async (status) => {
    store.answer = (p) => (p.streams.reduce((n, st) => n + st.entries.length, 0) > 8 ? { status } : { status: 204 });
    const rec = recorder({ batchMaxEvents: 100 });
    await rec.start();
    await Promise.all(Array.from({ length: 60 }, (_, i) => rec.record(request(i))));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    expect(verifyChain(store.events(), { requireEnd: true })).toMatchObject({ ok: true, count: 62, duplicates: 0 });
  });

  it('keeps unshipped events across a restart and ships them once the store is back', async () => {
    store.answer = () => ({ status: 503 });
    const first = recorder();
    await first.start();
    for (let i = 0; i < 10; i++) await first.record(request(i));
    expect(await first.stop({ drainTimeoutMs: 50 })).toEqual({ shipped: false });
    expect(store.accepted).toHaveLength(0);
    store.answer = () => ({ status: 204 });
    const second = recorder();
    await second.start();
    expect(await second.whenShipped()).toBe(true);
    await second.stop();
    expect(verifyChain(store.events())).toMatchObject({ ok: true, count: 14, ended: true });
  });

  it('in drop mode writes a `dropped` event before the next event once shipping made room', async () => {
    let storeUp = false;
    store.answer = () => ({ status: storeUp ? 204 : 503 });
    const registry = new Registry();
    const rec = recorder({}, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, onFull: 'drop' }, registry);
    await rec.start();
    let dropped = 0;
    for (let i = 0; i < 400; i++) if ((await rec.record(request(i))) === undefined) dropped++;
    expect(dropped).toBeGreaterThan(0);
    expect(await registry.metrics()).toMatch(/sluice_audit_oldest_unshipped_age_seconds \d/);
    storeUp = true;
    expect(await rec.whenShipped()).toBe(true);
    const next = await rec.record(request(999));
    expect(next).toBeDefined();
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    const events = store.events();
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true });
    const marker = events.find((e) => e.kind === 'dropped')!;
    expect(marker.detail).toMatchObject({ count: dropped, spool_full: dropped, spool_io: 0 });
    expect(marker.seq).toBe(next!.seq - 1);
  });

  it('pushes to VictoriaLogs on its Loki path with disable_message_parsing=1 and its tenant headers', async () => {
    const rec = new AuditRecorder(
      { spoolDir: dir, pod, session: 'sess-vl', store: { type: 'victorialogs', url: `${url}/`, accountID: 3, projectID: 7, lingerMs: 0 } },
      { random: () => 0 },
    );
    await rec.start();
    await rec.record(request(0));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    expect(new Set(store.accepted.map((p) => p.url))).toEqual(new Set(['/insert/loki/api/v1/push?disable_message_parsing=1']));
    expect(store.accepted[0]!.headers).toMatchObject({ accountid: '3', projectid: '7' });
    expect(verifyChain(store.events(), { requireEnd: true })).toMatchObject({ ok: true, count: 3 });
  });
});

describe('an event the store will not take (oversized)', () => {
  const big = (i: number): AuditRecord => ({ ...request(i), body_sample: 'x'.repeat(20_000) });
  const longest = (p: Push) => Math.max(...p.streams.flatMap((st) => st.entries.map((e) => e.line.length)));

  it('a single event refused with 413 is shipped as a stub after a chained notice, not retried forever; verify accepts it and names it', async () => {
    const registry = new Registry();
    store.answer = (p) => (longest(p) > 10_000 ? { status: 413 } : { status: 204 });
    const rec = recorder({ batchMaxEvents: 100 }, {}, registry);
    await rec.start();
    await rec.record(request(0));
    const huge = await rec.record(big(1));
    for (let i = 2; i < 6; i++) await rec.record(request(i));
    expect(await rec.whenShipped(AbortSignal.timeout(10_000))).toBe(true);
    await rec.stop();
    // Halving the batch, then one refusal of the event alone: never more than a few 413s.
    expect(store.seen.filter((st) => st === 413).length).toBeLessThanOrEqual(5);
    const events = store.events() as unknown as Record<string, unknown>[];
    const stub = events.find((e) => e.seq === huge!.seq)!;
    expect(stub).toEqual({
      v: 1,
      id: huge!.id,
      session: 'sess-ship',
      seq: huge!.seq,
      prev_hash: huge!.prev_hash,
      hash: huge!.hash,
      time: huge!.time,
      kind: 'request',
      pod,
      request_id: huge!.request_id,
      omitted: { bytes: expect.any(Number), reason: 'store_refused_size', status: 413 },
    });
    expect((stub.omitted as { bytes: number }).bytes).toBeGreaterThan(20_000);
    const notice = events.find((e) => e.kind === 'dropped')!;
    expect(notice.detail).toEqual({ reason: 'store_refused_size', omitted: [{ seq: huge!.seq, hash: huge!.hash, bytes: (stub.omitted as { bytes: number }).bytes, status: 413 }] });
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true, omitted: [huge!.seq], count: 9 });
    expect(await registry.metrics()).toContain('sluice_audit_events_dropped_total{reason="oversized"} 1');
  });

  it('a line over maxEntryBytes is never sent: its stub goes instead', async () => {
    const rec = recorder({ maxEntryBytes: 8 * 1024 });
    await rec.start();
    const huge = await rec.record(big(0));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    expect(Math.max(...store.accepted.map(longest))).toBeLessThan(8 * 1024);
    expect(store.seen.every((st) => st === 204)).toBe(true);
    const events = store.events() as unknown as Record<string, unknown>[];
    expect(events.find((e) => e.seq === huge!.seq)!.omitted).toMatchObject({ reason: 'over_max_entry_bytes' });
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true, omitted: [huge!.seq] });
  });

  it('a stub nobody announced (content removed in the store) fails verify as edited', async () => {
    const rec = recorder({ batchMaxEvents: 100 });
    await rec.start();
    for (let i = 0; i < 4; i++) await rec.record(request(i));
    expect(await rec.whenShipped()).toBe(true);
    await rec.stop();
    const events = store.events() as unknown as Record<string, unknown>[];
    const victim = events[2]!;
    const forged = { v: 1, id: victim.id, session: victim.session, seq: victim.seq, prev_hash: victim.prev_hash, hash: victim.hash, time: victim.time, kind: victim.kind, pod, omitted: { bytes: 999, reason: 'store_refused_size', status: 413 } };
    if (victim.request_id !== undefined) (forged as Record<string, unknown>).request_id = victim.request_id;
    expect(verifyChain(events.map((e, i) => (i === 2 ? forged : e)))).toMatchObject({ ok: false, fault: { seq: 2, code: 'edited' } });
  });

  it('isSizeRefusal: 413, and a 400 that says the entry is too large; not other 400s', () => {
    expect(isSizeRefusal(413, '')).toBe(true);
    expect(isSizeRefusal(400, "Max entry size '262144' bytes exceeded for stream '{namespace=\"agents\"}' while adding an entry with length '300000' bytes")).toBe(true);
    expect(isSizeRefusal(400, 'request entity too large')).toBe(true);
    expect(isSizeRefusal(400, "entry for stream '{}' has timestamp too old")).toBe(false);
    expect(isSizeRefusal(401, 'no org id')).toBe(false);
    expect(isSizeRefusal(500, 'entry too large')).toBe(false);
  });
});
