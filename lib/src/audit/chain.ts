// The audit hash chain as pure functions over data: link a record to the previous event, encode an
// event as its canonical line, and verify a sequence of events. No I/O, no clock, no randomness:
// the caller passes id and time, so the same inputs always give the same hashes (golden tests).
// It must never accept an event whose stored form differs from what was hashed.
import { hash as oneShotHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { AUDIT_SCHEMA_VERSION, AuditEvent, GENESIS_HASH, describeIssues } from '../../../api/src/index.ts';
import type { AuditRecord } from '../../../api/src/index.ts';
import { canonicalJson } from './canonical-json.ts';
import { AuditError } from './errors.ts';

/** What the next link needs from the previous one; an AuditEvent is a ChainHead. */
export interface ChainHead {
  session: string;
  seq: number;
  hash: string;
  /** Event time of the head; keeps the chain's clock monotonic. */
  time?: string;
}

/** The head before the first event of a session. */
export function genesisHead(session: string): ChainHead {
  return { session, seq: -1, hash: GENESIS_HASH };
}

function encodeOrThrow(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = canonicalJson(value);
  } catch (err) {
    throw new AuditError('audit.bad_record', `${what} cannot be serialised canonically: ${(err as Error).message}`);
  }
  if (text === undefined) throw new AuditError('audit.bad_record', `${what} has no JSON form`);
  return text;
}

function joinMembers(...parts: string[]): string {
  return `{${parts.filter((p) => p.length > 0).join(',')}}`;
}

function sha256Hex(text: string): string {
  return oneShotHash('sha256', text, 'hex');
}

/**
 * SHA-256 (hex) over the RFC 8785 serialisation of the event without its `hash`, computed with the
 * `canonicalize` reference implementation (the definition verification holds events to).
 */
export function hashEvent(event: Readonly<Record<string, unknown>>): string {
  const { hash: _hash, ...rest } = event;
  const text = canonicalize(rest);
  if (text === undefined) throw new AuditError('audit.bad_record', 'event has no JSON form');
  return sha256Hex(text);
}

/** The event's canonical JSON, the exact line stored in the spool and in Loki. */
export function encodeEvent(event: AuditEvent): string {
  return encodeOrThrow(event, 'event');
}

/** Milliseconds since the epoch of an event time. */
export function eventTimeMs(time: string): number {
  return Date.parse(time);
}

const TICKS_PER_MS = 1_000_000;

/**
 * The event time for the next link: never before the head's time, and one millisecond later when
 * `seq % 1e6 === 0` would otherwise share the head's millisecond. That second rule keeps
 * `storeTimestampNs` strictly increasing along the chain (see there).
 */
export function nextEventTimeMs(head: ChainHead, nowMs: number): number {
  const headMs = head.time === undefined ? -Infinity : eventTimeMs(head.time);
  let t = Math.max(Math.floor(nowMs), headMs);
  const seq = head.seq + 1;
  if (seq > 0 && seq % TICKS_PER_MS === 0 && t === headMs) t += 1;
  return t;
}

/**
 * The nanosecond timestamp an event is stored under: its millisecond time plus `seq mod 1e6` in
 * the sub-millisecond digits. Unique and increasing with seq within a session, so the store's
 * time order is the chain order and re-sent events are exact duplicates the store folds.
 */
export function storeTimestampNs(event: Pick<AuditEvent, 'time' | 'seq'>): bigint {
  return BigInt(eventTimeMs(event.time)) * BigInt(TICKS_PER_MS) + BigInt(event.seq % TICKS_PER_MS);
}

const CHAIN_KEYS = ['v', 'id', 'time', 'session', 'seq', 'prev_hash'] as const;

export interface LinkContext {
  id: string;
  /** Wall-clock now; the event time is clamped so it never precedes the head's. */
  now: Date | number;
}

export interface ChainedEvent {
  event: AuditEvent;
  line: string;
}

/** Links a record after `prev` and returns the event with its canonical line. */
export function chainEventLine(prev: ChainHead, record: AuditRecord, ctx: LinkContext): ChainedEvent {
  const nowMs = typeof ctx.now === 'number' ? ctx.now : ctx.now.getTime();
  const chainFields: Record<string, unknown> = {
    v: AUDIT_SCHEMA_VERSION,
    id: ctx.id,
    time: new Date(nextEventTimeMs(prev, nowMs)).toISOString(),
    session: prev.session,
    seq: prev.seq + 1,
    prev_hash: prev.hash,
  };
  // One pass in sorted key order straight into the two halves around `hash` (no intermediate
  // copies: this runs for every event). Chain fields win over anything a caller smuggled into
  // the record; a smuggled `hash` is dropped.
  const fields = record as unknown as Record<string, unknown>;
  const keys = Object.keys(fields);
  for (const k of CHAIN_KEYS) if (!(k in fields)) keys.push(k);
  keys.sort();
  const lo: Record<string, unknown> = {};
  const hi: Record<string, unknown> = {};
  for (const key of keys) {
    if (key === 'hash') continue;
    const value = key in chainFields ? chainFields[key] : fields[key];
    // Top-level keys are schema fields (no integer-like names), so code-unit order is plain `<`.
    if (key < 'hash') lo[key] = value;
    else hi[key] = value;
  }
  const before = encodeOrThrow(lo, 'event').slice(1, -1);
  const after = encodeOrThrow(hi, 'event').slice(1, -1);
  const hash = sha256Hex(joinMembers(before, after));
  const line = joinMembers(before, `"hash":"${hash}"`, after);
  const event = { ...lo, hash, ...hi } as AuditEvent;
  return { event, line };
}

/** Links a record after `prev`: the pure chaining step. */
export function chainEvent(prev: ChainHead, record: AuditRecord, ctx: LinkContext): AuditEvent {
  return chainEventLine(prev, record, ctx).event;
}

// ---------------------------------------------------------------------------------------------
// Verification

export type ChainFaultCode =
  | 'malformed'
  | 'wrong_session'
  | 'edited'
  | 'bad_genesis'
  | 'truncated_head'
  | 'gap'
  | 'reordered'
  | 'fork'
  | 'broken_link'
  | 'truncated_tail';

export interface ChainFault {
  /** The first sequence number that is not as the chain says it must be. */
  seq: number;
  code: ChainFaultCode;
  message: string;
  /** Position in the input of the offending event (the input length for a missing tail). */
  index: number;
}

export interface VerifyOptions {
  /** Every event must belong to this session. Default: the first event's session. */
  session?: string;
  /** Require the last event to be `session_end` (the session is over, nothing may follow). */
  requireEnd?: boolean;
  /** A head known from elsewhere (the live spool, an earlier verify): the chain must reach it. */
  head?: { seq: number; hash: string };
}

/**
 * What the store holds instead of an event it refused as too large (sidecar/src/audit/shipper.ts):
 * the event's chain fields and what was omitted, never its content.
 */
export const OmittedStub = AuditEvent.pick({ v: true, id: true, session: true, seq: true, prev_hash: true, hash: true, time: true, kind: true, pod: true, request_id: true })
  .extend({
    omitted: z
      .object({ bytes: z.number().int().nonnegative(), reason: z.enum(['store_refused_size', 'over_max_entry_bytes']), status: z.number().int().optional() })
      .strict(),
  })
  .strict();
export type OmittedStub = z.infer<typeof OmittedStub>;

/** The {seq, hash} pairs a chained `dropped` event says were shipped as stubs. */
function announcedOmissions(ev: AuditEvent): { seq: number; hash: string }[] {
  if (ev.kind !== 'dropped' || !Array.isArray(ev.detail?.omitted)) return [];
  return (ev.detail.omitted as unknown[]).filter(
    (o): o is { seq: number; hash: string } => typeof (o as { seq?: unknown }).seq === 'number' && typeof (o as { hash?: unknown }).hash === 'string',
  );
}

export interface ChainSummary {
  session: string;
  count: number;
  /** Seqs whose content the store does not have (an `omitted` stub, announced by a chained `dropped` event). */
  omitted: number[];
  /** Identical re-deliveries of an event that were skipped (at-least-once shipping). */
  duplicates: number;
  lastSeq: number;
  lastHash: string;
  /** The last event is `session_end`. */
  ended: boolean;
}

export type VerifyResult = ({ ok: true } & ChainSummary) | { ok: false; fault: ChainFault; verified: number };

function fault(seq: number, code: ChainFaultCode, message: string, index: number, verified: number): VerifyResult {
  return { ok: false, fault: { seq, code, message, index }, verified };
}

function seqOf(raw: unknown, fallback: number): number {
  const seq = (raw as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' && Number.isInteger(seq) && seq >= 0 ? seq : fallback;
}

/**
 * Checks events in the order given (the store's order): each is well-formed, of one session,
 * hashes to its `hash`, and links to the one before by seq + 1 and prev_hash. Identical repeats
 * (same seq and hash) are skipped: shipping is at-least-once. Returns the first bad seq and why.
 */
export function verifyChain(events: readonly unknown[], opts: VerifyOptions = {}): VerifyResult {
  const seen = new Map<number, string>();
  const present = new Set<number>();
  for (const raw of events) present.add(seqOf(raw, -1));
  let session = opts.session;
  let prev: Pick<AuditEvent, 'seq' | 'hash' | 'kind'> | undefined;
  let duplicates = 0;
  /** Stubs not yet announced by a later chained event: seq → hash. */
  const unannounced = new Map<number, { hash: string; index: number }>();
  const omitted: number[] = [];
  for (let index = 0; index < events.length; index++) {
    const raw = events[index];
    const expected = prev ? prev.seq + 1 : 0;
    if (raw !== null && typeof raw === 'object' && 'omitted' in raw) {
      // A stub links like an event (seq, prev_hash, and the next event's prev_hash is its hash),
      // but its content cannot be checked: it is accepted only when a later chained event of the
      // sidecar announces exactly this seq and hash.
      const stub = OmittedStub.safeParse(raw);
      if (!stub.success) {
        const seq = seqOf(raw, expected);
        return fault(seq, 'malformed', `seq ${seq}: not an omitted-event stub (${describeIssues(stub.error).join('; ')})`, index, seen.size);
      }
      const st = stub.data;
      session ??= st.session;
      if (st.session !== session) return fault(st.seq, 'wrong_session', `seq ${st.seq}: belongs to session ${st.session}, not ${session}`, index, seen.size);
      const known = seen.get(st.seq);
      if (known !== undefined) {
        if (known === st.hash) {
          duplicates++;
          continue;
        }
        return fault(st.seq, 'fork', `seq ${st.seq}: two different events claim this seq`, index, seen.size);
      }
      if (st.seq !== expected) return fault(expected, st.seq < expected || present.has(expected) ? 'reordered' : 'gap', `seq ${expected}: missing or out of order before the stub of seq ${st.seq}`, index, seen.size);
      if (st.prev_hash !== (prev ? prev.hash : GENESIS_HASH)) return fault(st.seq, prev ? 'broken_link' : 'bad_genesis', `seq ${st.seq}: prev_hash does not match`, index, seen.size);
      unannounced.set(st.seq, { hash: st.hash, index });
      omitted.push(st.seq);
      seen.set(st.seq, st.hash);
      prev = st;
      continue;
    }
    const parsed = AuditEvent.safeParse(raw);
    if (!parsed.success) {
      const seq = seqOf(raw, expected);
      return fault(seq, 'malformed', `seq ${seq}: not an audit event (${describeIssues(parsed.error).join('; ')})`, index, seen.size);
    }
    const ev = parsed.data;
    session ??= ev.session;
    if (ev.session !== session) {
      return fault(ev.seq, 'wrong_session', `seq ${ev.seq}: belongs to session ${ev.session}, not ${session}`, index, seen.size);
    }
    if (hashEvent(ev) !== ev.hash) {
      return fault(ev.seq, 'edited', `seq ${ev.seq}: content does not match its hash (edited after it was written)`, index, seen.size);
    }
    const known = seen.get(ev.seq);
    if (known !== undefined) {
      if (known === ev.hash) {
        duplicates++;
        continue;
      }
      return fault(ev.seq, 'fork', `seq ${ev.seq}: two different events claim this seq`, index, seen.size);
    }
    if (!prev) {
      if (ev.seq !== 0) {
        return fault(0, 'truncated_head', `seq 0: missing; the chain starts at seq ${ev.seq}`, index, 0);
      }
      if (ev.prev_hash !== GENESIS_HASH) {
        return fault(0, 'bad_genesis', 'seq 0: prev_hash is not the genesis hash', index, 0);
      }
    } else if (ev.seq !== expected) {
      if (ev.seq < expected || present.has(expected)) {
        return fault(expected, 'reordered', `seq ${expected}: out of order (seq ${ev.seq} came before it)`, index, seen.size);
      }
      const upTo = ev.seq - 1;
      const missing = upTo === expected ? `seq ${expected}` : `seq ${expected}..${upTo}`;
      return fault(expected, 'gap', `seq ${expected}: missing (${missing} not in the store)`, index, seen.size);
    } else if (ev.prev_hash !== prev.hash) {
      return fault(ev.seq, 'broken_link', `seq ${ev.seq}: prev_hash does not match the hash of seq ${prev.seq}`, index, seen.size);
    }
    seen.set(ev.seq, ev.hash);
    prev = ev;
    for (const o of announcedOmissions(ev)) if (unannounced.get(o.seq)?.hash === o.hash) unannounced.delete(o.seq);
  }
  const [orphan] = unannounced;
  if (orphan) return fault(orphan[0], 'edited', `seq ${orphan[0]}: its content is omitted without a chained event of the sidecar saying so`, orphan[1].index, seen.size);
  const count = seen.size;
  const lastSeq = prev ? prev.seq : -1;
  if (opts.head) {
    const atHead = seen.get(opts.head.seq);
    if (atHead === undefined && opts.head.seq > lastSeq) {
      return fault(lastSeq + 1, 'truncated_tail', `seq ${lastSeq + 1}: missing; the chain must reach seq ${opts.head.seq}`, events.length, count);
    }
    if (atHead !== opts.head.hash) {
      return fault(opts.head.seq, 'fork', `seq ${opts.head.seq}: does not match the known head hash`, events.length, count);
    }
  }
  const ended = prev?.kind === 'session_end';
  if (opts.requireEnd && !ended) {
    return fault(lastSeq + 1, 'truncated_tail', `seq ${lastSeq + 1}: missing; the session has no session_end event`, events.length, count);
  }
  return {
    ok: true,
    session: session ?? '',
    count,
    omitted,
    duplicates,
    lastSeq,
    lastHash: prev ? prev.hash : GENESIS_HASH,
    ended,
  };
}
