// Fuzzing the WebSocket frame reader (websocket/frames.ts), which decides what crosses an upgraded
// connection: generated frame streams (every opcode including reserved ones, FIN and RSV bits,
// masked and unmasked, 7/16/64-bit lengths including non-minimal ones, fragmented messages with
// control frames between fragments, valid and invalid UTF-8, close codes valid and not), then
// byte-mutated and split into random chunks.
// Properties: it never throws; chunking never changes what it reads; it reads exactly what `ws`'s
// own parser (lib/receiver.js, a server-side Receiver) reads, up to the same point where both
// refuse; what it accepted, re-encoded by encodeFrame and read again, is the same (what sluice
// sends on is what it inspected); it never holds more than two messages' worth of bytes.
import { afterAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { Receiver } from 'ws';
import { CLOSE, FrameReader, OPCODE, encodeFrame } from '../../src/websocket/frames.ts';
import type { WsEvent } from '../../src/websocket/frames.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const MAX = 4096;

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  lenForm: 'min' | '16' | '64';
  payload: Buffer;
}

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 40 }).map((s) => Buffer.from(s, 'utf8')),
  fc.constantFrom(Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('é€😀'), Buffer.alloc(126, 0x61), Buffer.alloc(300, 0x62)),
  fc.tuple(fc.constantFrom(1000, 1001, 1004, 1005, 1006, 1011, 1015, 2999, 3000, 4999, 5000, 0), fc.string({ maxLength: 10 })).map(([code, r]) => {
    const b = Buffer.alloc(2 + Buffer.byteLength(r));
    b.writeUInt16BE(code, 0);
    b.write(r, 2);
    return b;
  }),
);
const frame: fc.Arbitrary<FrameSpec> = fc.record({
  fin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  rsv: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(0x40, 0x20, 0x10) }),
  opcode: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }),
  masked: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  lenForm: fc.constantFrom('min' as const, 'min' as const, '16' as const, '64' as const),
  payload,
});

function encodeSpec(f: FrameSpec, key: Buffer): Buffer {
  const len = f.payload.length;
  const form = f.lenForm === 'min' ? (len < 126 ? 'min' : len < 65536 ? '16' : '64') : f.lenForm;
  const ext = form === 'min' ? 0 : form === '16' ? 2 : 8;
  const head = Buffer.alloc(2 + ext);
  head[0] = (f.fin ? 0x80 : 0) | f.rsv | f.opcode;
  head[1] = (f.masked ? 0x80 : 0) | (form === 'min' ? len : form === '16' ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeUInt32BE(len, 6);
  if (!f.masked) return Buffer.concat([head, f.payload]);
  const body = Buffer.from(f.payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, key, body]);
}

/** A plausible conversation: data messages split into fragments, controls in between. */
const stream = fc.tuple(fc.array(frame, { maxLength: 8 }), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([frames, key]) => Buffer.concat(frames.map((f) => encodeSpec(f, Buffer.from(key)))));
const input = fc.record({ bytes: mutated(stream, [0x00, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a, 0xfe, 0xff]), cuts: fc.array(fc.nat({ max: 400 }), { maxLength: 6 }) });

type Seen = string[];

function describeEvent(ev: WsEvent): string {
  if (ev.type === 'message') return `${ev.opcode === OPCODE.text ? 'text' : 'binary'}:${ev.payload.toString('hex')}`;
  if (ev.type === 'close') return `close:${ev.code ?? 1005}:${Buffer.from(ev.reason).toString('hex')}`;
  return `${ev.type}:${ev.payload.toString('hex')}`;
}

function readAll(chunks: Buffer[]): { seen: Seen; refused: boolean; maxBuffered: number } {
  const r = new FrameReader('client', { maxMessageBytes: MAX, maxFragments: 1000 });
  const seen: Seen = [];
  let refused = false;
  let maxBuffered = 0;
  for (const c of chunks) {
    const out = r.push(c);
    seen.push(...out.events.map(describeEvent));
    if (out.violation) {
      expect([CLOSE.protocolError, CLOSE.invalidPayload, CLOSE.tooBig]).toContain(out.violation.close);
      refused = true;
    }
    maxBuffered = Math.max(maxBuffered, r.buffered);
  }
  return { seen, refused, maxBuffered };
}

async function reference(bytes: Buffer): Promise<{ seen: Seen; refused: boolean }> {
  const rx = new Receiver({ isServer: true, maxPayload: MAX, allowSynchronousEvents: true });
  const seen: Seen = [];
  let refused = false;
  let concluded = false;
  rx.on('message', (data, binary) => seen.push(`${binary ? 'binary' : 'text'}:${data.toString('hex')}`));
  rx.on('ping', (d) => seen.push(`ping:${d.toString('hex')}`));
  rx.on('pong', (d) => seen.push(`pong:${d.toString('hex')}`));
  rx.on('conclude', (code, reason) => {
    concluded = true;
    seen.push(`close:${code}:${reason.toString('hex')}`);
  });
  rx.on('error', () => (refused = true));
  // One byte at a time would be slower; ws reads the same whatever the chunking.
  rx.write(bytes);
  // A Writable reports its error on the next tick.
  await new Promise((r) => setImmediate(r));
  return { seen, refused: refused && !concluded };
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

test('the frame reader reads what ws reads, whatever the chunking, and re-encodes to the same', async () => {
  const report = await fuzz('websocket-frames', input, 3000, async ({ bytes, cuts }) => {
    const whole = readAll([bytes]);
    const chunked = readAll(split(bytes, cuts));
    expect(chunked.seen).toEqual(whole.seen);
    expect(chunked.refused).toBe(whole.refused);
    expect(chunked.maxBuffered).toBeLessThanOrEqual(2 * MAX + 14 + bytes.length);
    const ref = await reference(bytes);
    expect(whole.seen).toEqual(ref.seen);
    expect(whole.refused).toBe(ref.refused);
    // What sluice would send on (its own encoding, masked with a fresh key) reads back the same.
    const again = new FrameReader('client', { maxMessageBytes: MAX });
    const re = new FrameReader('client', { maxMessageBytes: MAX });
    const events = re.push(bytes).events;
    const encoded = Buffer.concat(
      events.map((ev) =>
        ev.type === 'message'
          ? encodeFrame(ev.opcode, ev.payload, Buffer.from([1, 2, 3, 4]))
          : encodeFrame(ev.type === 'ping' ? OPCODE.ping : ev.type === 'pong' ? OPCODE.pong : OPCODE.close, ev.payload, Buffer.from([9, 8, 7, 6])),
      ),
    );
    const back = again.push(encoded);
    expect(back.violation).toBeUndefined();
    expect(back.events.map(describeEvent)).toEqual(events.map(describeEvent));
  });
  expect(report.runs).toBeGreaterThan(0);
}, 120_000);

test('a server frame stream is read with the roles reversed (masked server frames refused)', () => {
  const r = new FrameReader('server');
  expect(r.push(encodeFrame(OPCODE.text, Buffer.from('hi'))).events).toEqual([expect.objectContaining({ type: 'message', payload: Buffer.from('hi') })]);
  const masked = new FrameReader('server').push(encodeFrame(OPCODE.text, Buffer.from('hi'), Buffer.from([1, 2, 3, 4])));
  expect(masked.violation).toMatchObject({ close: CLOSE.protocolError, code: 'ws.malformed_frame' });
});
