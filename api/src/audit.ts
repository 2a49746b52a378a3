// The audit event: one per request, per response, and per policy load, approval step, kill,
// interception refusal and DNS query. Events of one session form a hash chain: `hash` is
// SHA-256 over the canonical (RFC 8785) serialisation of the event without `hash`, and
// `prev_hash` is the previous event's hash, so gaps, reordering and edits are detectable.
import { z } from 'zod';
import { Creator, Facts } from './policy.ts';

export const AUDIT_SCHEMA_VERSION = 1;
/** prev_hash of the first event of a session. */
export const GENESIS_HASH = '0'.repeat(64);

export const AuditKind = z.enum([
  'session_start',
  'session_end',
  'request',
  'response',
  'policy_load',
  'approval',
  'kill',
  'refusal',
  'dns',
  'credential',
  'dropped',
]);

export const AuditEvent = z
  .object({
    v: z.literal(AUDIT_SCHEMA_VERSION),
    id: z.string(),
    session: z.string(),
    seq: z.number().int().nonnegative(),
    prev_hash: z.string().regex(/^[0-9a-f]{64}$/),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    time: z.string().describe('RFC 3339 with milliseconds, UTC'),
    kind: AuditKind,
    pod: z
      .object({ namespace: z.string(), name: z.string(), service_account: z.string().optional() })
      .strict(),
    creator: Creator.optional(),
    request_id: z.string().optional().describe('links a response (and approval steps) to its request'),
    request: z
      .object({
        method: z.string(),
        scheme: z.string(),
        host: z.string(),
        port: z.number().int(),
        path: z.string(),
        facts: Facts.optional(),
      })
      .strict()
      .optional(),
    decision: z
      .object({
        action: z.enum(['allow', 'deny', 'hold']),
        code: z.string(),
        reason: z.string(),
        revision: z.string().optional(),
        scope_used: z.string().optional(),
      })
      .strict()
      .optional(),
    status: z.number().int().optional(),
    masking: z
      .array(
        z
          .object({
            rule: z.string(),
            direction: z.enum(['request', 'response']),
            offset: z.number().int().nonnegative(),
          })
          .strict(),
      )
      .optional()
      .describe('every redaction by rule id and offset, never the value'),
    bytes: z.object({ in: z.number().int(), out: z.number().int() }).strict().optional(),
    timings: z.record(z.string(), z.number()).optional().describe('milliseconds by phase'),
    body_sample: z.string().optional().describe('masked, size-capped, only when the decision says record_body'),
    detail: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type AuditKind = z.infer<typeof AuditKind>;
export type AuditEvent = z.infer<typeof AuditEvent>;
/**
 * An event before chaining: the recorder assigns id, time (its own monotonic clock, so time
 * never runs backwards along the chain), session, seq, prev_hash and hash.
 */
export type AuditRecord = Omit<AuditEvent, 'v' | 'id' | 'time' | 'session' | 'seq' | 'prev_hash' | 'hash'>;

/**
 * `detail.websocket` of an event of an upgraded connection, beside `detail.upgrade`. Additive:
 * `AuditEvent.detail` stays an open record, and these describe what the sidecar writes there so
 * readers (kubectl sluice replay) can parse it. Shape 2 (`v: 2`) is a window of messages of one
 * direction (one event per window, not per message); events written before it carry one message
 * each (`direction`, `kind`, `frames`, no `v`) and are still read.
 */
export const WebSocketMessageEntry = z
  .object({
    n: z.number().int().positive().describe('its place in the connection, both directions counted together from 1'),
    t: z.number().nonnegative().describe('milliseconds since the upgrade'),
    kind: z.enum(['text', 'binary', 'ping', 'pong', 'close']),
    bytes: z.number().int().nonnegative().describe('payload bytes as received'),
    frames: z.number().int().positive().optional().describe('frames it arrived in, when more than one'),
    masked: z.array(z.string()).optional().describe('rules that redacted something in it (never the value)'),
    close: z.number().int().optional().describe("a close frame's code"),
    text: z.string().optional().describe('with record_body: the first bytes forwarded (masked), text and close reasons'),
    base64: z.string().optional().describe('with record_body: the first bytes forwarded (masked), binary, ping and pong'),
    sha256: z.string().optional().describe('with record_body, when the sample is not the whole message: SHA-256 (hex) of what was forwarded'),
  })
  .strict();

export const WebSocketBatchDetail = z
  .object({
    v: z.literal(2),
    direction: z.enum(['out', 'in']).describe('out: agent to upstream (a request event); in: upstream to agent (a response event)'),
    messages: z.array(WebSocketMessageEntry),
    undelivered: z.literal(true).optional().describe('the connection ended before these were carried'),
  })
  .strict();

export const WebSocketEndDetail = z
  .object({
    end: z.string().describe('ws.closed, ws.peer_gone or the code sluice closed it with'),
    by: z.enum(['agent', 'upstream', 'sluice']),
    reason: z.string(),
    close: z.number().int().optional(),
    messages: z.object({ out: z.number().int(), in: z.number().int() }).strict(),
  })
  .strict();

export type WebSocketMessageEntry = z.infer<typeof WebSocketMessageEntry>;
export type WebSocketBatchDetail = z.infer<typeof WebSocketBatchDetail>;
export type WebSocketEndDetail = z.infer<typeof WebSocketEndDetail>;
