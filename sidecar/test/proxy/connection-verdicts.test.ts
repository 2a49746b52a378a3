// The same connection verdict counts and records the same way whichever way the connection
// arrived (the real sidecar, raw sockets as the agent): a name the policy denies at the
// connection level — a CONNECT target on the explicit proxy port, a TLS server name on the
// transparent port — is one refusal (sluice_refusals_total{code}, a `refusal` audit event naming
// it), and every request answered with that denial (the CONNECT itself; the request on the
// terminated TLS connection) is one request (sluice_requests_total{action="deny",code}, a `request`
// audit event with the decision and the 403). The kill switch, which the connection phase answers
// for every name, counts the same way too.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.name_denied", "reason": "this name is not listed"}

decision := {"allow": true, "code": "test.allowed", "reason": "listed"} if input.request.host == "allowed.example"
`;

let sidecar: TestSidecar;
let spoolDir: string;
let podInfoDir: string;
const refused: { code: string; reason: string; via: string; name?: string }[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-verdicts-'));
  spoolDir = join(dir, 'spool');
  podInfoDir = dir;
  writeFileSync(join(podInfoDir, 'labels'), 'app="coder"\n');
  writeFileSync(join(podInfoDir, 'annotations'), '');
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'connection-verdicts'),
    config: { audit: { spoolDir, spool: { fsync: 'none' } }, podInfoDir },
    events: { refused: (r) => void refused.push(r) },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
});

async function counters(code: string): Promise<{ refusals: number; requests: number }> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  const c = code.replace(/\./g, '\\.');
  const read = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    refusals: read(new RegExp(`sluice_refusals_total\\{code="${c}"\\} (\\d+)`)),
    requests: read(new RegExp(`sluice_requests_total\\{action="deny",code="${c}"\\} (\\d+)`)),
  };
}

/** Reads until the socket closes (bounded). */
function answerOf(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

async function viaConnect(name: string): Promise<string> {
  const socket = connect(sidecar.addresses.proxy!.port, '127.0.0.1');
  const answer = answerOf(socket);
  socket.write(`CONNECT ${name}:443 HTTP/1.1\r\nHost: ${name}:443\r\n\r\n`);
  return answer;
}

async function viaSni(name: string): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: name, ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['http/1.1'] });
  const answer = answerOf(socket);
  socket.once('secureConnect', () => socket.end(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`));
  return answer;
}

type Ev = { kind: string; request_id?: string; request?: Record<string, unknown>; decision?: Record<string, unknown>; status?: number; detail?: Record<string, unknown> };

/** The spooled events: the refusal of `name` with `code` naming `via`, and the request event of `id` (waits, bounded). */
async function recorded(name: string, code: string, via: string, id: string): Promise<{ refusal?: Ev; request?: Ev }> {
  let out: { refusal?: Ev; request?: Ev } = {};
  for (let i = 0; i < 200 && !(out.refusal && out.request); i++) {
    const events = readdirSync(spoolDir)
      .filter((f) => f.endsWith('.ndjson'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Ev);
    out = { refusal: events.find((e) => e.kind === 'refusal' && e.detail?.via === via && e.detail.name === name && e.detail.code === code), request: events.find((e) => e.kind === 'request' && e.request_id === id) };
    if (!(out.refusal && out.request)) await new Promise((r) => setTimeout(r, 10));
  }
  return out;
}

/** The same verdict on `name` through a CONNECT and through a TLS name: what each counted and recorded. */
async function bothWays(name: string, code: string): Promise<Record<string, unknown>[]> {
  const shapes: Record<string, unknown>[] = [];
  for (const [via, arrive] of [
    ['proxy', viaConnect],
    ['transparent', viaSni],
  ] as const) {
    const before = await counters(code);
    const seen = refused.length;
    const answer = await arrive(name);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain(`x-sluice-decision: deny; code=${code}`);
    const id = /x-sluice-request-id: (\S+)/i.exec(answer)?.[1] ?? '';
    const after = await counters(code);
    const events = await recorded(name, code, via, id);
    shapes.push({
      counted: { refusals: after.refusals - before.refusals, requests: after.requests - before.requests },
      refusedEvent: refused.slice(seen).map((r) => ({ ...r, via: typeof r.via })),
      refusal: { keys: Object.keys(events.refusal?.detail ?? {}).sort(), code: events.refusal?.detail?.code, reason: events.refusal?.detail?.reason },
      request: {
        status: events.request?.status,
        decision: events.request?.decision,
        host: events.request?.request?.host,
        port: events.request?.request?.port,
        scheme: events.request?.request?.scheme,
        keys: Object.keys(events.request ?? {}).filter((k) => !['id', 'seq', 'ts', 'time', 'prev', 'hash', 'session', 'request_id', 'timings', 'bytes'].includes(k)).sort(),
      },
    });
  }
  return shapes;
}

test('a CONNECT deny and a TLS-name deny with the same verdict produce the same metrics and the same audit shape', async () => {
  const shapes = await bothWays('denied.example', 'test.name_denied');
  expect(shapes[0]).toMatchObject({
    counted: { refusals: 1, requests: 1 },
    refusedEvent: [{ code: 'test.name_denied', reason: 'this name is not listed', name: 'denied.example' }],
    refusal: { code: 'test.name_denied' },
    request: { status: 403, decision: { action: 'deny', code: 'test.name_denied' }, host: 'denied.example', port: 443, scheme: 'https' },
  });
  expect(shapes[1]).toEqual(shapes[0]);
});

test('the kill switch at the connection level counts and records the same way for a CONNECT and a TLS name', async () => {
  writeFileSync(join(podInfoDir, 'annotations'), 'sluice.io/kill="true"\n');
  await sidecar.podInfo.refresh();
  try {
    const shapes = await bothWays('allowed.example', 'pod.killed');
    expect(shapes[0]).toMatchObject({
      counted: { refusals: 1, requests: 1 },
      refusedEvent: [{ code: 'pod.killed', name: 'allowed.example' }],
      request: { status: 403, decision: { action: 'deny', code: 'pod.killed' }, host: 'allowed.example', port: 443 },
    });
    expect(shapes[1]).toEqual(shapes[0]);
  } finally {
    writeFileSync(join(podInfoDir, 'annotations'), '');
    await sidecar.podInfo.refresh();
  }
});
