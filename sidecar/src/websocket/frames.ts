// RFC 6455 framing, pure: an incremental reader that turns one direction's bytes into whole
// messages and control frames, and an encoder for what sluice sends on. Every frame the reader
// accepts is re-encoded by sluice before it leaves, so what the peer receives is exactly what was
// inspected (no parser differential: an odd length encoding, a stray RSV bit or an interleaving
// trick never reaches the other side as such). It must never throw on hostile input (fuzz-tested):
// a violation is returned as an error with the close code RFC 6455 §7.4.1 gives it. No
// extension is ever negotiated through sluice (the offer is stripped, see handshake.ts), so every
// RSV bit must be 0.
import { isUtf8 } from 'node:buffer';

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes sluice sends (RFC 6455 §7.4.1). */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, invalidPayload: 1007, policyViolation: 1008, tooBig: 1009, internalError: 1011 } as const;

/** The side that wrote the bytes: a client masks every frame, a server none (§5.1). */
export type Sender = 'client' | 'server';

export type WsEvent =
  | { type: 'message'; opcode: typeof OPCODE.text | typeof OPCODE.binary; payload: Buffer; frames: number }
  | { type: 'ping' | 'pong'; payload: Buffer }
  | { type: 'close'; code: number | undefined; reason: string; payload: Buffer };

export interface WsViolation {
  /** Close code to send: 1002 protocol error, 1007 bad UTF-8, 1009 too big. */
  close: number;
  /** Stable sluice code for audit and metrics. */
  code: 'ws.malformed_frame' | 'ws.invalid_utf8' | 'ws.message_too_large';
  reason: string;
}

export interface ReaderLimits {
  /** Largest message (all its fragments together), in payload bytes. */
  maxMessageBytes: number;
  /** Most fragments one message may have (a million one-byte frames cost more than their bytes). */
  maxFragments: number;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxMessageBytes: 1024 * 1024, maxFragments: 1024 };

/** Close codes a peer may send (§7.4.1, §7.4.2): 1000–1003, 1007–1014, 3000–4999. */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/**
 * Reads one direction of a WebSocket connection. push() takes bytes as they arrive and returns
 * the events they complete; after a violation (or a close frame) the reader takes nothing more.
 */
export class FrameReader {
  readonly #sender: Sender;
  readonly #limits: ReaderLimits;
  #buf: Buffer = Buffer.alloc(0);
  /** Chunks not yet joined to #buf, and how many bytes #buf must reach before parsing can go on. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = 2;
  #fragments: Buffer[] = [];
  #fragmentBytes = 0;
  #fragmentOpcode: number | undefined;
  #done = false;

  constructor(sender: Sender, limits: Partial<ReaderLimits> = {}) {
    this.#sender = sender;
    this.#limits = { ...DEFAULT_READER_LIMITS, ...limits };
  }

  /** True once a close frame or a violation ended this direction. */
  get done(): boolean {
    return this.#done;
  }

  /** Bytes held for an incomplete frame or message (bounded by the limits plus one frame head). */
  get buffered(): number {
    return this.#buf.length + this.#pendingBytes + this.#fragmentBytes;
  }

  push(chunk: Buffer): { events: WsEvent[]; violation?: WsViolation } {
    const events: WsEvent[] = [];
    if (this.#done) return { events };
    // A large frame arriving in small chunks is joined once, when it is complete, not per chunk.
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#buf.length + this.#pendingBytes < this.#need) return { events };
    this.#buf = Buffer.concat([this.#buf, ...this.#pending]);
    this.#pending = [];
    this.#pendingBytes = 0;
    for (;;) {
      const r = this.#next();
      if (r === undefined) return { events };
      this.#need = 2;
      if (r === null) continue;
      if ('type' in r) {
        events.push(r);
        if (r.type === 'close') {
          this.#done = true;
          return { events };
        }
        continue;
      }
      this.#done = true;
      this.#buf = Buffer.alloc(0);
      this.#fragments = [];
      this.#fragmentBytes = 0;
      return { events, violation: r };
    }
  }

  #wait(bytes: number): undefined {
    this.#need = bytes;
    return undefined;
  }

  /** One frame off the buffer: an event, null (a fragment taken in), a violation, or undefined (need more bytes). */
  #next(): WsEvent | null | WsViolation | undefined {
    const b = this.#buf;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    const rsv = b[0]! & 0x70;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let len = b[1]! & 0x7f;
    let at = 2;
    if (rsv) return bad(`a frame sets RSV bits (0x${rsv.toString(16)}) but no extension was negotiated`);
    const control = opcode >= 0x8;
    if (opcode !== OPCODE.continuation && opcode !== OPCODE.text && opcode !== OPCODE.binary && opcode !== OPCODE.close && opcode !== OPCODE.ping && opcode !== OPCODE.pong) {
      return bad(`unknown opcode 0x${opcode.toString(16)}`);
    }
    if (masked !== (this.#sender === 'client')) return bad(this.#sender === 'client' ? 'a client frame is not masked' : 'a server frame is masked');
    if (control && (!fin || len > 125)) return bad('a control frame is fragmented or longer than 125 bytes');
    if (opcode === OPCODE.close && len === 1) return bad('a close frame with a one-byte body');
    if (!control) {
      if (opcode === OPCODE.continuation && this.#fragmentOpcode === undefined) return bad('a continuation frame without a message to continue');
      if (opcode !== OPCODE.continuation && this.#fragmentOpcode !== undefined) return bad('a new message starts before the fragmented one ended');
    }
    if (len === 126) {
      if (b.length < 4) return this.#wait(4);
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return this.#wait(10);
      const hi = b.readUInt32BE(2);
      // The most significant bit must be 0 (§5.2); past 2^53 a length is not a safe integer anyway.
      if (hi > 0x1fffff) return bad('a 64-bit frame length out of range');
      len = hi * 0x100000000 + b.readUInt32BE(6);
      at = 10;
    }
    // Refuse an oversized message from its head: its bytes are never buffered.
    if (!control && this.#fragmentBytes + len > this.#limits.maxMessageBytes) {
      return { close: CLOSE.tooBig, code: 'ws.message_too_large', reason: `a message exceeds ${this.#limits.maxMessageBytes} bytes` };
    }
    const maskAt = at;
    if (masked) at += 4;
    if (b.length < at + len) return this.#wait(at + len);
    const payload = Buffer.from(b.subarray(at, at + len));
    if (masked) {
      for (let i = 0; i < payload.length; i++) payload[i]! ^= b[maskAt + (i & 3)]!;
    }
    this.#buf = b.subarray(at + len);
    if (control) return controlEvent(opcode, payload);
    if (opcode !== OPCODE.continuation) this.#fragmentOpcode = opcode;
    this.#fragments.push(payload);
    this.#fragmentBytes += len;
    if (!fin) {
      if (this.#fragments.length >= this.#limits.maxFragments) {
        return { close: CLOSE.tooBig, code: 'ws.message_too_large', reason: `a message has more than ${this.#limits.maxFragments} fragments` };
      }
      return null;
    }
    const message = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments);
    const frames = this.#fragments.length;
    const op = this.#fragmentOpcode as typeof OPCODE.text | typeof OPCODE.binary;
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.#fragmentOpcode = undefined;
    if (op === OPCODE.text && !isUtf8(message)) return { close: CLOSE.invalidPayload, code: 'ws.invalid_utf8', reason: 'a text message is not valid UTF-8' };
    return { type: 'message', opcode: op, payload: message, frames };
  }
}

function bad(reason: string): WsViolation {
  return { close: CLOSE.protocolError, code: 'ws.malformed_frame', reason };
}

function controlEvent(opcode: number, payload: Buffer): WsEvent | WsViolation {
  if (opcode === OPCODE.ping) return { type: 'ping', payload };
  if (opcode === OPCODE.pong) return { type: 'pong', payload };
  if (payload.length === 0) return { type: 'close', code: undefined, reason: '', payload };
  if (payload.length === 1) return bad('a close frame with a one-byte body');
  const code = payload.readUInt16BE(0);
  if (!validCloseCode(code)) return bad(`a close frame with code ${code}, which may not be sent`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) return { close: CLOSE.invalidPayload, code: 'ws.invalid_utf8', reason: 'a close reason is not valid UTF-8' };
  return { type: 'close', code, reason: reason.toString('utf8'), payload };
}

/**
 * One frame (FIN set: sluice sends every message whole). `mask` is the 4-byte key for frames to a
 * server; frames to a client are never masked.
 */
export function encodeFrame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len <= 0xffff ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) {
    head.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    head.writeUInt32BE(len >>> 0, 6);
  }
  if (!mask) return Buffer.concat([head, payload]);
  mask.copy(head, 2 + ext);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, body]);
}

/** A close frame's body: the code and a reason cut to fit the 125-byte control-frame limit on a character boundary. */
export function closePayload(code: number, reason: string): Buffer {
  let r = Buffer.from(reason, 'utf8');
  if (r.length > 123) {
    let end = 123;
    while (end > 0 && (r[end]! & 0xc0) === 0x80) end--;
    r = r.subarray(0, end);
  }
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}
