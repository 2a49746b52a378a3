// The request pipeline's phases as a feature sees them, through a real sidecar (real policy, real
// upstream, curl as the agent): a feature registered with the sidecar hears each phase of a request
// in order, with what that phase's context type promises already there; an answer a handler
// returns ends the request with sluice's own answer, which is counted and recorded like any other;
// the done phase runs once for every request, however it ended. Protocol upgrades run the same
// phases (guard, facts, decide, decided, hold, done) as any request.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { startHttpUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { Feature } from '../../src/proxy/pipeline.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.denied", "reason": "not in the test policy"}

decision := {"allow": true, "code": "test.allowed", "reason": "allowed"} if input.request.host == "api.example.test"

decision := {"allow": true, "code": "test.held", "reason": "held", "require_approval": {"reason": "a human decides", "scope": "once"}} if input.request.host == "held.example.test"

decision := {"allow": true, "code": "test.held_ws", "reason": "held", "allow_upgrade": true, "require_approval": {"reason": "a human decides", "scope": "once"}} if input.request.host == "held-ws.example.test"
`;

/** phase → what the handler saw (request id, and for later phases the fields its type promises). */
const seen: { phase: string; id: string; detail?: string }[] = [];
const observer: Feature = {
  name: 'observer',
  phases: {
    guard: (head) => {
      seen.push({ phase: 'guard', id: head.id, detail: head.conn.via });
      const ctx = head;
      if (ctx.req.headers['x-test-refuse']) return { status: 403, code: 'test.refused_by_guard', reason: 'a guard refused it', kind: 'deny' };
      return undefined;
    },
    facts: (ctx) => void seen.push({ phase: 'facts', id: ctx.id, detail: `${ctx.summary.host}${ctx.pathAndQuery}` }),
    decided: (ctx) => void seen.push({ phase: 'decided', id: ctx.id, detail: `${ctx.action} ${ctx.evaluation.decision.code}` }),
    hold: (ctx) => void seen.push({ phase: 'hold', id: ctx.id }),
    'before-forward': (ctx) => {
      seen.push({ phase: 'before-forward', id: ctx.id, detail: `${ctx.upstream.method} ${ctx.upstream.origin}${ctx.upstream.path}` });
      ctx.upstream.headers['x-observed'] = ctx.id;
    },
    'response-headers': (ctx, head) => {
      seen.push({ phase: 'response-headers', id: ctx.id, detail: String(head.status) });
      return { headers: { ...head.headers, 'x-phase': 'response-headers' } };
    },
    'before-end': async (ctx) => {
      seen.push({ phase: 'before-end', id: ctx.id, detail: String(ctx.bytesIn) });
      await Promise.resolve();
    },
    done: (ctx) => void seen.push({ phase: 'done', id: ctx.id, detail: `${ctx.status ?? ''} ${ctx.answer?.code ?? ''}` }),
  },
};

let upstream: TestUpstream;
let sidecar: TestSidecar;
let spoolDir: string;

beforeAll(async () => {
  spoolDir = join(mkdtempSync(join(tmpdir(), 'sluice-phases-')), 'spool');
  // Chunked (no Content-Length): the agent's response ends only when the pipeline ends it, after
  // before-end — with a length, curl could hang up as soon as it has the body.
  upstream = await startHttpUpstream((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'));
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'pipeline-phases'),
    resolve: { 'api.example.test:80': upstream.dial, 'held.example.test:80': upstream.dial, 'other.example.test:80': upstream.dial },
    config: { audit: { spoolDir, spool: { fsync: 'none' } } },
    features: [observer],
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

async function curl(url: string, headers: string[] = []): Promise<string> {
  const out = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', sidecar.proxyUrl, ...headers.flatMap((h) => ['-H', h]), url], { encoding: 'utf8' });
  return out.stdout;
}

/** The phases one request went through, once its done phase ran (it runs after the answer is out). */
async function phasesOf(requestId: string): Promise<{ phase: string; detail?: string }[]> {
  for (let i = 0; i < 100 && !seen.some((s) => s.id === requestId && s.phase === 'done'); i++) await new Promise((r) => setTimeout(r, 10));
  return seen.filter((s) => s.id === requestId).map(({ phase, detail }) => ({ phase, detail }));
}

const requestIdOf = (response: string): string => /x-sluice-request-id: (\S+)/i.exec(response)?.[1] ?? '';

async function requestsTotal(code: string): Promise<number> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  return Number(new RegExp(`sluice_requests_total\\{action="[a-z]+",code="${code.replace('.', '\\.')}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
}

describe('a feature in the request pipeline', () => {
  test('an allowed request passes every phase in order, each with what its type promises', async () => {
    const out = await curl('http://api.example.test/items?q=1');
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toMatch(/x-phase: response-headers/i);
    const id = upstream.requests.at(-1)!.headers['x-observed'] as string;
    expect(id).toBeTruthy();
    expect(await phasesOf(id)).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'facts', detail: 'api.example.test/items?q=1' },
      { phase: 'decided', detail: 'allow test.allowed' },
      { phase: 'before-forward', detail: 'GET http://api.example.test/items?q=1' },
      { phase: 'response-headers', detail: '200' },
      { phase: 'before-end', detail: '5' },
      { phase: 'done', detail: '200 ' },
    ]);
  });

  test('a denied request ends after the decision; done still runs', async () => {
    const out = await curl('http://other.example.test/');
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(await phasesOf(requestIdOf(out))).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'facts', detail: 'other.example.test/' },
      { phase: 'done', detail: '403 test.denied' },
    ]);
  });

  test('a held request reaches the hold phase and is refused unless a hold handler approves it', async () => {
    // The observer's hold handler passes (returns nothing) and no approval backend is configured:
    // the pipeline refuses the hold — a feature that forgets to decide cannot let it through.
    const out = await curl('http://held.example.test/');
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toMatch(/x-sluice-decision: hold; code=test\.held/i);
    expect(await phasesOf(requestIdOf(out))).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'facts', detail: 'held.example.test/' },
      { phase: 'decided', detail: 'hold test.held' },
      { phase: 'hold', detail: undefined },
      { phase: 'done', detail: '403 test.held' },
    ]);
    expect(upstream.requests.filter((r) => r.headers.host === 'held.example.test')).toHaveLength(0);
  });

  test('an answer a handler returns ends the request: sent with the decision header, counted and recorded', async () => {
    const before = await requestsTotal('test.refused_by_guard');
    const out = await curl('http://api.example.test/', ['x-test-refuse: 1']);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toMatch(/x-sluice-decision: deny; code=test\.refused_by_guard/i);
    const id = requestIdOf(out);
    expect(JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'test.refused_by_guard', reason: 'a guard refused it', request_id: id });
    expect(await phasesOf(id)).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'done', detail: '403 test.refused_by_guard' },
    ]);
    expect(await requestsTotal('test.refused_by_guard')).toBe(before + 1);
    let recorded: unknown;
    for (let i = 0; i < 100 && !recorded; i++) {
      recorded = readdirSync(spoolDir)
        .filter((f) => f.endsWith('.ndjson'))
        .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
        .filter((l) => l.includes(`"${id}"`))
        .map((l) => JSON.parse(l) as unknown)[0];
      if (!recorded) await new Promise((r) => setTimeout(r, 10));
    }
    expect(recorded).toMatchObject({ kind: 'request', request_id: id, status: 403, decision: { action: 'deny', code: 'test.refused_by_guard' } });
  });
});

/** A raw WebSocket upgrade request through the explicit proxy; the answer as text. */
function rawUpgrade(head: string[]): Promise<string> {
  const proxy = new URL(sidecar.proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(proxy.port), proxy.hostname);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const host = head.find((h) => h.startsWith('Host: '))?.slice('Host: '.length) ?? 'api.example.test';
    socket.write(`${[`GET http://${host}/chat HTTP/1.1`, ...head, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${key}`].join('\r\n')}\r\n\r\n`);
  });
}

describe('upgrades run the same phases as any request', () => {
  test('an upgrade the policy would refuse for lack of allow_upgrade is refused by a guard first', async () => {
    // Without the guard phase it would get http.upgrade_denied from the decision.
    const answer = await rawUpgrade(['Host: api.example.test', 'X-Test-Refuse: 1']);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toMatch(/x-sluice-decision: deny; code=test\.refused_by_guard/i);
    const id = requestIdOf(answer);
    expect((await phasesOf(id)).map((s) => s.phase)).toEqual(['guard', 'done']);
  });

  test('an upgrade is summarized, has its facts, is decided with allow_upgrade, and is done', async () => {
    const before = await requestsTotal('http.upgrade_denied');
    const answer = await rawUpgrade(['Host: api.example.test']);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toMatch(/x-sluice-decision: deny; code=http\.upgrade_denied/i);
    expect(await phasesOf(requestIdOf(answer))).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'facts', detail: 'api.example.test/chat' },
      { phase: 'done', detail: '403 http.upgrade_denied' },
    ]);
    expect(await requestsTotal('http.upgrade_denied')).toBe(before + 1);
  });

  test('a held upgrade is recorded and reaches the hold phase, refused unless a hold handler approves it', async () => {
    const answer = await rawUpgrade(['Host: held-ws.example.test']);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toMatch(/x-sluice-decision: hold; code=test\.held_ws/i);
    expect(await phasesOf(requestIdOf(answer))).toEqual([
      { phase: 'guard', detail: 'proxy' },
      { phase: 'facts', detail: 'held-ws.example.test/chat' },
      { phase: 'decided', detail: 'hold test.held_ws' },
      { phase: 'hold', detail: undefined },
      { phase: 'done', detail: '403 test.held_ws' },
    ]);
  });

  test('an upgrade with two Host fields is refused like any request (http.bad_host), not decided on one of them', async () => {
    const answer = await rawUpgrade(['Host: api.example.test', 'Host: other.example.test']);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/x-sluice-decision: deny; code=http\.bad_host/i);
  });
});
