// A recorded session end to end: an agent's requests through a real sidecar become a hash-chained
// session in a real log store (VictoriaLogs) — every request and response, the policy load, a deny, a masked response
// (by rule id, never the value) — and `kubectl sluice replay`/`verify` read it back intact.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AuditEvent } from '../../api/src/index.ts';
import { runCli } from '../../cli/src/main.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';

const run = promisify(execFile);
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';

let vlogs: VictoriaLogsServer;
let api: TestUpstream;
let sidecar: TestSidecar;
let session: string;

function capture() {
  let out = '';
  let err = '';
  return { io: { out: (s: string) => void (out += s), err: (s: string) => void (err += s) }, out: () => out, err: () => err };
}

beforeAll(async () => {
  vlogs = await VictoriaLogsServer.start();
  const ca = await createTestCa();
  api = await startHttpsUpstream(ca, ['registry.npmjs.org'], (req, res, body) => {
    if (req.url === '/config') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ aws_secret_access_key: SECRET }));
    echoHandler(req, res, body);
  });
  sidecar = await startTestSidecar({
    resolve: { 'registry.npmjs.org:443': api.dial },
    extraRootsFiles: [ca.caFile],
    config: { audit: { spoolDir: `${vlogs.dir}/spool`, spool: { fsync: 'always' }, loki: { url: vlogs.pushUrl, lingerMs: 5 } } },
  });
  session = sidecar.sessionId;
  const curl = (url: string) => run('curl', ['-sS', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, url]).catch(() => undefined);
  await curl('https://registry.npmjs.org/express');
  await curl('https://registry.npmjs.org/config');
  await curl('https://paste.example/upload');
  await sidecar.stop(); // session_end, then a bounded drain to the store
  await vlogs.flush(); // what was acknowledged is searchable now
}, 120_000);

afterAll(async () => {
  await api?.close();
  await vlogs?.stop();
});

describe('a recorded session', () => {
  let events: AuditEvent[];

  beforeAll(async () => {
    const c = capture();
    expect(await runCli(['replay', session, '--victorialogs', vlogs.url, '--output', 'json'], c.io)).toBe(0);
    events = c
      .out()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent);
  });

  test('holds the session start, the policy load, each request and response, and the session end, in order', () => {
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe('session_start');
    expect(kinds.at(-1)).toBe('session_end');
    expect(kinds).toContain('policy_load');
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => events[0]!.seq + i));
    const allowed = events.filter((e) => e.request?.path === '/express');
    expect(allowed.map((e) => e.kind)).toEqual(['request', 'response']);
    expect(allowed[0]!.decision).toMatchObject({ action: 'allow', code: 'registry.read' });
    expect(allowed[1]).toMatchObject({ status: 200, request_id: allowed[0]!.request_id });
  });

  test('a denied CONNECT is recorded with the rule that denied it', () => {
    const refusal = events.find((e) => e.kind === 'refusal' && (e.detail as { name?: string } | undefined)?.name === 'paste.example');
    expect(refusal?.detail).toMatchObject({ code: 'net.not_allowlisted' });
  });

  test('a masked response lists the redaction by rule and offset, and the secret appears nowhere', () => {
    const masked = events.find((e) => e.kind === 'response' && e.request?.path === '/config');
    expect(masked?.masking?.[0]).toMatchObject({ rule: expect.any(String), direction: 'response', offset: expect.any(Number) });
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });

  test('kubectl sluice verify checks the chain end to end', async () => {
    const c = capture();
    expect(await runCli(['verify', session, '--victorialogs', vlogs.url, '--require-end'], c.io)).toBe(0);
  });

  test('the human timeline names requests, decisions and statuses', async () => {
    const c = capture();
    expect(await runCli(['replay', session, '--victorialogs', vlogs.url], c.io)).toBe(0);
    expect(c.out()).toContain('registry.npmjs.org');
    expect(c.out()).toContain('registry.read');
  });
});
