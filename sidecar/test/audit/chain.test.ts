// Golden and property tests of the pure hash chain: fixed inputs give the committed hashes, and
// verification names the first bad seq for every kind of damage.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { GENESIS_HASH } from '../../../api/src/index.ts';
import type { AuditEvent, AuditRecord } from '../../../api/src/index.ts';
import {
  chainEvent,
  chainEventLine,
  encodeEvent,
  genesisHead,
  hashEvent,
  nextEventTimeMs,
  storeTimestampNs,
  verifyChain,
} from '../../../lib/src/audit/chain.ts';
import type { ChainHead } from '../../../lib/src/audit/chain.ts';

const testdata = join(import.meta.dirname, 'testdata');
const goldenPath = join(testdata, 'chain-golden.ndjson');

interface Fixture {
  session: string;
  links: { id: string; now: string; record: AuditRecord }[];
}

function buildGolden(): string[] {
  const fixture = JSON.parse(readFileSync(join(testdata, 'chain-records.json'), 'utf8')) as Fixture;
  let head: ChainHead = genesisHead(fixture.session);
  const lines: string[] = [];
  for (const link of fixture.links) {
    const { event, line } = chainEventLine(head, link.record, { id: link.id, now: new Date(link.now) });
    lines.push(line);
    head = event;
  }
  return lines;
}

function goldenEvents(): AuditEvent[] {
  return readFileSync(goldenPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEvent);
}

describe('chainEvent (golden)', () => {
  it('links the fixed records to the committed events, byte for byte', () => {
    const lines = buildGolden();
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, `${lines.join('\n')}\n`);
    expect(lines).toEqual(readFileSync(goldenPath, 'utf8').trim().split('\n'));
  });

  it('hashes the RFC 8785 form without `hash`, computed here by hand for one event', () => {
    const head = genesisHead('s');
    const ev = chainEvent(head, { kind: 'dns', pod: { namespace: 'n', name: 'p' }, detail: { b: 1, a: 'x' } }, { id: 'i', now: 0 });
    const canonical =
      '{"detail":{"a":"x","b":1},"id":"i","kind":"dns","pod":{"name":"p","namespace":"n"},' +
      `"prev_hash":"${GENESIS_HASH}","seq":0,"session":"s","time":"1970-01-01T00:00:00.000Z","v":1}`;
    expect(ev.hash).toBe(createHash('sha256').update(canonical).digest('hex'));
    expect(encodeEvent(ev)).toBe(`${canonical.slice(0, canonical.indexOf(',"id"'))},"hash":"${ev.hash}"${canonical.slice(canonical.indexOf(',"id"'))}`);
  });

  it('stores exactly the canonical form of the event it returns', () => {
    for (const line of buildGolden()) {
      const ev = JSON.parse(line) as AuditEvent;
      expect(encodeEvent(ev)).toBe(line);
      expect(hashEvent(ev as unknown as Record<string, unknown>)).toBe(ev.hash);
    }
  });

  it('links seq, prev_hash and session, and never lets the record override them', () => {
    const [first, second] = goldenEvents();
    expect(first!.seq).toBe(0);
    expect(first!.prev_hash).toBe(GENESIS_HASH);
    expect(second!.prev_hash).toBe(first!.hash);
    const smuggled = { kind: 'dns', pod: { namespace: 'n', name: 'p' }, seq: 99, hash: 'f'.repeat(64), session: 'other' } as unknown as AuditRecord;
    const ev = chainEvent(second!, smuggled, { id: 'x', now: Date.parse(second!.time) });
    expect(ev.seq).toBe(2);
    expect(ev.session).toBe(second!.session);
    expect(ev.prev_hash).toBe(second!.hash);
    expect(hashEvent(ev as unknown as Record<string, unknown>)).toBe(ev.hash);
  });

  it('keeps time monotonic along the chain when the clock steps back', () => {
    const events = goldenEvents();
    // The fixture's fourth link was given a time before the third's.
    expect(events[3]!.time).toBe(events[2]!.time);
    for (let i = 1; i < events.length; i++) expect(Date.parse(events[i]!.time)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.time));
  });

  it('refuses values RFC 8785 cannot serialise, with audit.bad_record', () => {
    const head = genesisHead('s');
    const bad = { kind: 'dns', pod: { namespace: 'n', name: 'p' }, timings: { x: Number.NaN } } as AuditRecord;
    expect(() => chainEvent(head, bad, { id: 'i', now: 0 })).toThrow(expect.objectContaining({ code: 'audit.bad_record' }));
    const lone = { kind: 'dns', pod: { namespace: 'n', name: '\ud800' } } as AuditRecord;
    expect(() => chainEvent(head, lone, { id: 'i', now: 0 })).toThrow(expect.objectContaining({ code: 'audit.bad_record' }));
  });
});

describe('store timestamps', () => {
  it('increase strictly with seq, also across the 1e6 wrap within one millisecond', () => {
    let head: ChainHead = { session: 's', seq: 999_997, hash: GENESIS_HASH, time: '2025-01-01T00:00:00.000Z' };
    let prevTs = storeTimestampNs({ time: head.time!, seq: head.seq });
    for (let i = 0; i < 5; i++) {
      const ev = chainEvent(head, { kind: 'dns', pod: { namespace: 'n', name: 'p' } }, { id: `i${i}`, now: Date.parse('2025-01-01T00:00:00.000Z') });
      const ts = storeTimestampNs(ev);
      expect(ts > prevTs).toBe(true);
      prevTs = ts;
      head = ev;
    }
    expect(head.seq).toBe(1_000_002);
  });

  it('nextEventTimeMs never goes back and bumps only at the wrap', () => {
    const head: ChainHead = { session: 's', seq: 5, hash: GENESIS_HASH, time: new Date(1000).toISOString() };
    expect(nextEventTimeMs(head, 500)).toBe(1000);
    expect(nextEventTimeMs(head, 2000)).toBe(2000);
    expect(nextEventTimeMs({ ...head, seq: 999_999 }, 1000)).toBe(1001);
    expect(nextEventTimeMs(genesisHead('s'), 42.9)).toBe(42);
  });
});

describe('verifyChain', () => {
  // The committed golden chain; the golden test above proves it is what chainEvent produces.
  const events = existsSync(goldenPath) ? goldenEvents() : [];

  it('accepts the intact chain and reports its head', () => {
    const r = verifyChain(events);
    expect(r).toEqual({
      ok: true,
      session: 'golden-session-1',
      count: 6,
      duplicates: 0,
      omitted: [],
      lastSeq: 5,
      lastHash: events[5]!.hash,
      ended: true,
    });
  });

  it('skips identical re-deliveries anywhere (at-least-once shipping)', () => {
    const r = verifyChain([events[0], events[1], events[1], events[2], events[0], ...events.slice(3)]);
    expect(r).toMatchObject({ ok: true, count: 6, duplicates: 2 });
  });

  const cases: { name: string; input: () => unknown[]; seq: number; code: string; opts?: Parameters<typeof verifyChain>[1] }[] = [
    {
      name: 'an edited field',
      input: () => events.map((e) => (e.seq === 2 ? { ...e, decision: { ...e.decision!, action: 'deny' } } : e)),
      seq: 2,
      code: 'edited',
    },
    { name: 'a deleted event', input: () => events.filter((e) => e.seq !== 3), seq: 3, code: 'gap' },
    { name: 'several deleted events', input: () => events.filter((e) => e.seq < 2 || e.seq > 3), seq: 2, code: 'gap' },
    { name: 'two swapped events', input: () => [events[0], events[2], events[1], ...events.slice(3)], seq: 1, code: 'reordered' },
    { name: 'a missing first event', input: () => events.slice(1), seq: 0, code: 'truncated_head' },
    { name: 'a cut tail when the end is required', input: () => events.slice(0, 4), seq: 4, code: 'truncated_tail', opts: { requireEnd: true } },
    {
      name: 'a cut tail below a known head',
      input: () => events.slice(0, 3),
      seq: 3,
      code: 'truncated_tail',
      opts: { head: { seq: 5, hash: events[5]!.hash } },
    },
    {
      name: 'a head that does not match',
      input: () => events,
      seq: 4,
      code: 'fork',
      opts: { head: { seq: 4, hash: 'a'.repeat(64) } },
    },
    {
      name: 'a forged event re-hashed to match itself',
      input: () => {
        const forged = { ...events[3]!, status: 500 } as Record<string, unknown>;
        forged.hash = hashEvent(forged);
        return events.map((e) => (e.seq === 3 ? forged : e));
      },
      seq: 4,
      code: 'broken_link',
    },
    {
      name: 'two different events with one seq',
      input: () => {
        const other = { ...events[2]!, detail: { approver: 'mallory' } } as Record<string, unknown>;
        other.hash = hashEvent(other);
        return [...events.slice(0, 3), other, ...events.slice(3)];
      },
      seq: 2,
      code: 'fork',
    },
    { name: 'an event of another session', input: () => events, seq: 0, code: 'wrong_session', opts: { session: 'someone-else' } },
    { name: 'a line that is not an event', input: () => [events[0], '{"seq":1,"garbage":true', ...events.slice(2)], seq: 1, code: 'malformed' },
    {
      name: 'a first event that does not start from genesis',
      input: () => {
        const e0 = { ...events[0]!, prev_hash: 'b'.repeat(64) } as Record<string, unknown>;
        e0.hash = hashEvent(e0);
        return [e0, ...events.slice(1)];
      },
      seq: 0,
      code: 'bad_genesis',
    },
  ];

  it.each(cases)('names the first bad seq for $name', ({ input, seq, code, opts }) => {
    const r = verifyChain(input(), opts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.fault).toMatchObject({ seq, code });
    expect(r.fault.message).toContain(`seq ${seq}`);
  });

  it('accepts an open chain unless the end is required', () => {
    expect(verifyChain(events.slice(0, 4))).toMatchObject({ ok: true, ended: false, lastSeq: 3 });
  });
});
