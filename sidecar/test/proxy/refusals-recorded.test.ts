// Every refusal is answered with sluice's decision header, counted and recorded — also the ones
// node:http's parser makes before any request exists (no Host, a malformed request line, an
// oversized header block, an unknown Expect, an unusable CONNECT): the real sidecar, raw sockets.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { once } from 'node:events';
import { connect } from 'node:net';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';

let sidecar: TestSidecar;
const malformed: { code: string; status: number; request_id?: string }[] = [];
const done: RequestContext[] = [];

beforeAll(async () => {
  sidecar = await startTestSidecar({ events: { malformed: (m) => malformed.push(m), requestDone: (ctx) => done.push(ctx) } });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
});

/** Sends raw bytes, returns everything the sidecar answers until it closes (bounded). */
async function raw(port: number, bytes: string): Promise<string> {
  const s = connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  s.on('error', () => undefined);
  s.setTimeout(5000, () => s.destroy());
  s.write(bytes);
  // A complete answer with content-length is enough; a refusal also closes the connection.
  await new Promise<void>((resolve) => {
    const check = () => {
      const m = /content-length: (\d+)\r\n[^]*?\r\n\r\n([^]*)$/i.exec(answer);
      if (m && Buffer.byteLength(m[2]!, 'latin1') >= Number(m[1])) resolve();
    };
    s.on('data', check);
    s.once('close', () => resolve());
  });
  s.destroy();
  return answer;
}

async function counted(metric: string, labels: Record<string, string>): Promise<number> {
  const m = await sidecar.registry.getSingleMetric(metric)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('refusals the pipeline never sees are answered, counted and recorded', () => {
  test.each([
    ['a malformed request line', 'GET /a b HTTP/1.1\r\nHost: github.com\r\n\r\n', 400],
    ['an obs-folded header', 'GET / HTTP/1.1\r\nHost: github.com\r\nX-A: b\r\n c\r\n\r\n', 400],
    ['a header block over the limit', `GET / HTTP/1.1\r\nHost: github.com\r\nX-Fill: ${'x'.repeat(40_000)}\r\n\r\n`, 431],
    ['an Expect other than 100-continue', 'POST http://github.com/ HTTP/1.1\r\nHost: github.com\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n', 417],
    ['a CONNECT without a port', 'CONNECT github.com HTTP/1.1\r\nHost: github.com\r\n\r\n', 400],
  ])('%s', async (_what, bytes, status) => {
    const seen = malformed.length;
    const answer = await raw(sidecar.addresses.proxy!.port, bytes);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    const code = /x-sluice-decision: deny; code=([\w.]+)/.exec(answer)?.[1];
    expect(code).toBeDefined();
    // The record names the request id the agent was given, so the answer can be found in the audit.
    const id = /x-sluice-request-id: (\S+)/.exec(answer)?.[1];
    expect(malformed.slice(seen)).toEqual([expect.objectContaining({ code, status, request_id: id })]);
    expect(await counted('sluice_http_errors_total', { code: code! })).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: code });
  });

  test.each([
    ['the explicit proxy port', 'proxy', 'GET http://github.com/ HTTP/1.1\r\n\r\n'],
    ['the transparent port', 'transparent', 'GET / HTTP/1.1\r\n\r\n'],
  ] as const)('a request without Host on %s is a recorded http.no_host, not a bare 400', async (_what, port, bytes) => {
    const before = await counted('sluice_requests_total', { action: 'deny', code: 'http.no_host' });
    const seen = done.length;
    const answer = await raw(sidecar.addresses[port]!.port, bytes);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('x-sluice-decision: deny; code=http.no_host');
    expect(await counted('sluice_requests_total', { action: 'deny', code: 'http.no_host' })).toBe(before + 1);
    expect(done.slice(seen).map((c) => c.answer?.code)).toEqual(['http.no_host']);
  });
});
