// An upstream that echoes the credential sluice injected (a debug endpoint, an error quoting the
// request) gets its echo overwritten before the agent sees it — and the operator learns of it: the
// echo is counted by provider (sluice_credentials_echoes_redacted_total) and listed among the
// response event's redactions (rule `credential-echo`, never the value). Real sidecar, real
// static-secret provider, real HTTPS upstream, curl as the agent.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);
const SECRET = `static-${randomBytes(12).toString('hex')}`;

const POLICY = `package sluice

decision := {"allow": true, "code": "test.echo", "reason": "echo", "credential": {"provider": "static-secret", "secret": "echo"}}
`;

let upstream: TestUpstream;
let sidecar: TestSidecar;
let spoolDir: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-echo-'));
  spoolDir = join(dir, 'spool');
  writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
  const ca = await createTestCa();
  upstream = await startHttpsUpstream(ca, ['echo.example.test'], (req, res) => {
    // Echoes the Authorization it received in a header and twice in the body.
    const auth = String(req.headers.authorization);
    const body = JSON.stringify({ seen: auth, again: auth });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-echo-authorization': auth }).end(body);
  });
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'echo-recorded'),
    resolve: { 'echo.example.test:443': upstream.dial },
    extraRootsFiles: [ca.caFile],
    config: {
      audit: { spoolDir, spool: { fsync: 'none' } },
      credentials: { static: { echo: { file: join(dir, 'secret'), hosts: ['echo.example.test'] } } },
    },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

/** The response event of the request whose decision has `code` (the recorder writes asynchronously). */
async function responseEvent(code: string): Promise<{ masking?: { rule: string; direction: string; offset: number }[] } | undefined> {
  for (let i = 0; i < 100; i++) {
    const events = readdirSync(spoolDir)
      .filter((f) => f.endsWith('.ndjson'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
      .filter((l) => l.includes(`"${code}"`))
      .map((l) => JSON.parse(l) as { kind: string; masking?: { rule: string; direction: string; offset: number }[] });
    const response = events.find((e) => e.kind === 'response');
    if (response) return response;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

test('an echoed credential is overwritten, counted by provider and recorded as a redaction', async () => {
  const out = (await run('curl', ['-sS', '-D', '-', '--max-time', '20', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, 'https://echo.example.test/debug'], { encoding: 'utf8' })).stdout;
  expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRET}`);
  expect(out).not.toContain(SECRET);
  const body = JSON.parse(out.slice(out.lastIndexOf('\r\n\r\n') + 4)) as { seen: string; again: string };
  const stars = `Bearer ${'*'.repeat(SECRET.length)}`;
  expect(body).toEqual({ seen: stars, again: stars });
  expect(out).toMatch(/x-echo-authorization: Bearer \*+\r\n/i);

  // One header value and two body occurrences.
  const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  expect(metrics).toMatch(/sluice_credentials_echoes_redacted_total\{provider="static-secret"\} 3\n/);
  const event = await responseEvent('test.echo');
  const echoes = (event?.masking ?? []).filter((m) => m.rule === 'credential-echo');
  const raw = JSON.stringify({ seen: `Bearer ${SECRET}`, again: `Bearer ${SECRET}` });
  const first = raw.indexOf(SECRET);
  expect(echoes).toEqual([
    { rule: 'credential-echo', direction: 'response', offset: 0 },
    { rule: 'credential-echo', direction: 'response', offset: first },
    { rule: 'credential-echo', direction: 'response', offset: raw.indexOf(SECRET, first + 1) },
  ]);
  expect(JSON.stringify(event)).not.toContain(SECRET);
});
