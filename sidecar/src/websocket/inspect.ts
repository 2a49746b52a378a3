// What may cross a WebSocket, pure: every message payload (text or binary) and every control
// payload (ping, pong, a close reason: 125 bytes each, enough to leak a key in pieces) goes
// through the same detectors as request bodies, with every decoded view (base64, hex, percent,
// escapes, UTF-16, JSON values joined). Agent → upstream follows the decision's `dlp` (mask or
// block; an upgrade without one blocks, since a long-lived channel is no place to let a secret
// by); upstream → agent is always masked. A secret that cannot be masked exactly, or a payload
// that cannot be decoded within the bounds, ends the connection: nothing unscanned crosses.
import { isUtf8 } from 'node:buffer';
import type { Code } from '../../../api/src/codes.ts';
import { scanDecoded } from '../masking/index.ts';
import type { Masker, ViewFinding } from '../masking/index.ts';

export type WsDirection = 'out' | 'in';

export type WsVerdict =
  | { action: 'forward'; payload: Buffer; findings: readonly ViewFinding[] }
  | { action: 'close'; code: Code; reason: string; findings: readonly ViewFinding[] };

export interface InspectOptions {
  masker: Masker;
  /** What to do with a secret: mask it in place, or end the connection. */
  mode: 'mask' | 'block';
  /** The payload must stay valid UTF-8 (text messages, close reasons). */
  text: boolean;
  /** Largest payload after masking (control frames: 125, close reasons: 123). */
  maxBytes?: number;
}

const VIA = (f: ViewFinding): string => (f.via.length ? `, ${f.via.join(' in ')}` : '');

export function inspectPayload(payload: Buffer, direction: WsDirection, o: InspectOptions): WsVerdict {
  if (payload.length === 0) return { action: 'forward', payload, findings: [] };
  const scan = scanDecoded(payload, o.masker.scanner, { mode: o.mode === 'mask' ? 'mask' : 'scan', maskRaw: true });
  if (scan.unscannable) return { action: 'close', code: scan.unscannable, reason: `a WebSocket message cannot be decoded within sluice's bounds (${scan.unscannable})`, findings: [] };
  if (scan.findings.length === 0) return { action: 'forward', payload, findings: [] };
  const first = scan.findings[0]!;
  const toward = direction === 'out' ? 'to the upstream' : 'to the agent';
  if (o.mode === 'block') return { action: 'close', code: 'dlp.secret_in_websocket', reason: `a WebSocket message ${toward} holds a secret (${first.rule}${VIA(first)})`, findings: scan.findings };
  if (scan.unmaskable) {
    return { action: 'close', code: 'dlp.unmaskable_secret', reason: `a WebSocket message ${toward} holds a secret (${scan.unmaskable.rule}${VIA(scan.unmaskable)}) that cannot be masked where it is`, findings: scan.findings };
  }
  if ((o.text && !isUtf8(scan.output)) || (o.maxBytes !== undefined && scan.output.length > o.maxBytes)) {
    return { action: 'close', code: 'dlp.unmaskable_secret', reason: `a WebSocket frame ${toward} holds a secret (${first.rule}) that cannot be masked within the frame`, findings: scan.findings };
  }
  return { action: 'forward', payload: scan.output, findings: scan.findings };
}

/** How much of the previous message is kept to catch a secret split across two messages. */
export const CARRY_BYTES = 256;
/** How much of the next message a split secret is looked for in (no rule's match is longer). */
const CARRY_AHEAD = 4096;

/**
 * A secret split across two messages (a key id at the end of one, its rest at the start of the
 * next: the far side joins them again). `tail` is the end of what was forwarded before (already
 * masked), `payload` what is to be forwarded now (already masked in itself). Returns the rule of a
 * secret that starts in `tail` and ends in `payload`: it cannot be masked any more (the first
 * half is gone), so the connection is closed.
 */
export function splitSecret(tail: Buffer, payload: Buffer, masker: Masker): string | undefined {
  if (tail.length === 0 || payload.length === 0) return undefined;
  const joined = Buffer.concat([tail, payload.subarray(0, CARRY_AHEAD)]);
  const { findings } = masker.scanner.scan(joined, 0, true);
  return findings.find((f) => f.start < tail.length && f.end > tail.length)?.rule;
}

/** The last CARRY_BYTES of what has been forwarded so far. */
export function nextTail(tail: Buffer, payload: Buffer): Buffer {
  if (payload.length >= CARRY_BYTES) return Buffer.from(payload.subarray(payload.length - CARRY_BYTES));
  const joined = Buffer.concat([tail, payload]);
  return Buffer.from(joined.subarray(Math.max(0, joined.length - CARRY_BYTES)));
}
