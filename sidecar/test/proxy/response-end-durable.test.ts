// A response's last byte waits for the before-end phase (where the audit recorder makes the
// response's event durable with fsync always): with a Content-Length the agent holds the whole
// response as soon as that byte arrives, so it must not arrive before the record is safe. A
// chunked response (an LLM's event stream) keeps streaming: only its terminating chunk waits.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { startHttpUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { Feature } from '../../src/proxy/pipeline.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const POLICY = `package sluice
decision := {"allow": true, "code": "test.allowed", "reason": "allowed"}
`;

const BODY = Buffer.alloc(256 * 1024, 0x61);

/** before-end calls, each with the bytes the agent's socket had been given when it ran, held until released. */
const gates: { written: number; release: () => void }[] = [];
let entered: (() => void) | undefined;
const gate: Feature = {
  name: 'gate',
  phases: {
    'before-end': (ctx) =>
      new Promise<void>((release) => {
        const socket = (ctx.res as unknown as { socket: Socket | null }).socket;
        gates.push({ written: socket?.bytesWritten ?? -1, release });
        entered?.();
      }),
  },
};

let upstream: TestUpstream;
let sidecar: TestSidecar;
/** resolved by the test once the agent has read the first event of the stream */
let firstEventRead: (() => void) | undefined;

beforeAll(async () => {
  upstream = await startHttpUpstream((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      new Promise<void>((r) => (firstEventRead = r)).then(() => res.end('data: two\n\n'), () => undefined);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
    res.end(BODY);
  });
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'response-end-durable'),
    resolve: { 'api.example.test:80': upstream.dial },
    features: [gate],
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

/** A raw agent: sends one request through the explicit proxy and collects what comes back. */
function agent(path: string): { socket: Socket; received: () => Buffer; until: (pred: (b: Buffer) => boolean) => Promise<void> } {
  const url = new URL(sidecar.proxyUrl);
  const socket = connect(Number(url.port), url.hostname);
  let data = Buffer.alloc(0);
  const waiters: { pred: (b: Buffer) => boolean; resolve: () => void }[] = [];
  socket.on('data', (c: Buffer) => {
    data = Buffer.concat([data, c]);
    for (const w of waiters.splice(0)) {
      if (w.pred(data)) w.resolve();
      else waiters.push(w);
    }
  });
  socket.write(`GET http://api.example.test${path} HTTP/1.1\r\nHost: api.example.test\r\n\r\n`);
  return {
    socket,
    received: () => data,
    until: (pred) => (pred(data) ? Promise.resolve() : new Promise((resolve) => waiters.push({ pred, resolve }))),
  };
}

describe('the end of a response and its record', () => {
  test('with a Content-Length, the last byte leaves only after before-end', async () => {
    const reached = new Promise<void>((r) => (entered = r));
    const a = agent('/fixed');
    await reached;
    const g = gates.at(-1)!;
    g.release();
    const complete = (b: Buffer) => {
      const headEnd = b.indexOf('\r\n\r\n');
      return headEnd >= 0 && b.length - headEnd - 4 >= BODY.length;
    };
    await a.until(complete);
    const all = a.received();
    expect(all.subarray(all.indexOf('\r\n\r\n') + 4)).toEqual(BODY);
    // what the agent had been given when the record was being made fell short of the response
    expect(g.written).toBeGreaterThan(0);
    expect(g.written).toBeLessThan(all.length);
    a.socket.destroy();
  });

  test('a chunked stream is not held: the agent reads an event before the upstream ends', async () => {
    const a = agent('/stream');
    await a.until((b) => b.includes('data: one'));
    expect(a.received().includes('data: two')).toBe(false);
    const reached = new Promise<void>((r) => (entered = r));
    firstEventRead!();
    await reached;
    gates.at(-1)!.release();
    await a.until((b) => b.includes('0\r\n\r\n'));
    expect(a.received().toString()).toContain('data: two');
    a.socket.destroy();
  });
});
