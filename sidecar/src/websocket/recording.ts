// How WebSocket messages are written to the audit trail, pure: one entry per message (its place
// in the connection, time, kind, size, frames, redactions by rule — and, only when the decision
// says record_body, a masked sample of its content with a SHA-256 of the whole when the sample is
// shorter), and batches of entries of one direction that become one audit event each. A batch is
// what the relay coalesced in one recording window (relay.ts decides when a window closes); this
// module only shapes it. It never holds a payload beyond the sample it cuts, and never records a
// value a redaction removed: the sample is cut from what was forwarded (already masked on the wire)
// and the audit record masks its detail again with every rule (proxy/audit-records.ts).
import { createHash } from 'node:crypto';
import type { WebSocketMessageEntry } from '../../../api/src/index.ts';
import type { ViewFinding } from '../masking/index.ts';
import type { WsDirection } from './inspect.ts';

/** The shape version of `detail.websocket` on a message event (1: one event per message). */
export const WS_RECORD_VERSION = 2;

export type WsEntryKind = WebSocketMessageEntry['kind'];

/** One message or control frame in a batch: the shape api/src/audit.ts documents. */
export type WsEntry = WebSocketMessageEntry;

export interface WsBatch {
  direction: WsDirection;
  entries: WsEntry[];
  /** Payload bytes of its messages. */
  bytes: number;
  /** Redactions, by rule and offset within their message (capped at MAX_BATCH_REDACTIONS). */
  masking: { rule: string; offset: number }[];
  /** The connection ended before these could be carried: recorded, never delivered. */
  undelivered?: true;
}

/** Redactions listed on one event (all are counted in metrics). */
export const MAX_BATCH_REDACTIONS = 100;

/** The first `max` bytes of a UTF-8 buffer, cut on a character boundary. */
function utf8Prefix(b: Buffer, max: number): Buffer {
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

export interface EntryInput {
  n: number;
  t: number;
  kind: WsEntryKind;
  bytes: number;
  frames: number;
  findings: readonly ViewFinding[];
  /** What was forwarded (the masked payload; for a close, its reason). */
  forwarded: Buffer;
  close?: number;
  /** Bytes of content to keep; 0 or undefined: none (the decision did not ask for record_body). */
  sampleBytes?: number;
}

export function entryOf(i: EntryInput): WsEntry {
  const e: WsEntry = { n: i.n, t: i.t, kind: i.kind, bytes: i.bytes };
  if (i.frames > 1) e.frames = i.frames;
  if (i.findings.length) e.masked = [...new Set(i.findings.map((f) => f.rule))];
  if (i.close !== undefined) e.close = i.close;
  const max = i.sampleBytes ?? 0;
  if (max > 0 && i.forwarded.length > 0) {
    const asText = i.kind === 'text' || i.kind === 'close';
    const sample = asText ? utf8Prefix(i.forwarded, max) : i.forwarded.subarray(0, max);
    if (asText) e.text = sample.toString('utf8');
    else e.base64 = sample.toString('base64');
    if (sample.length < i.forwarded.length) e.sha256 = createHash('sha256').update(i.forwarded).digest('hex');
  }
  return e;
}

/** The audit event a batch becomes: its kind, the request-like fields, and `detail` (beside `upgrade`). */
export function batchRecord(b: WsBatch): {
  kind: 'request' | 'response';
  fields: { bytes: { in: number; out: number }; masking?: { rule: string; direction: 'request' | 'response'; offset: number }[] };
  detail: { websocket: { v: number; direction: WsDirection; messages: WsEntry[]; undelivered?: true } };
} {
  const direction = b.direction === 'out' ? ('request' as const) : ('response' as const);
  const masking = b.masking.slice(0, MAX_BATCH_REDACTIONS).map((m) => ({ rule: m.rule, direction, offset: m.offset }));
  return {
    kind: direction,
    fields: { bytes: b.direction === 'out' ? { in: 0, out: b.bytes } : { in: b.bytes, out: 0 }, ...(masking.length ? { masking } : {}) },
    detail: { websocket: { v: WS_RECORD_VERSION, direction: b.direction, messages: b.entries, ...(b.undelivered ? { undelivered: true as const } : {}) } },
  };
}
