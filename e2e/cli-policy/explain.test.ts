// `kubectl sluice policy explain` against events a real sidecar recorded: an agent's allowed, denied
// and held requests through the in-process test sidecar land in its spool and a real log store
// (VictoriaLogs); explain reads them back by session and seq (as replay does) or from a `replay -o
// json` export, re-evaluates each with the built bundle and names the rule in policies/rego that
// decided, with the values it read. A bundle of another revision exits 3; an event that records no
// request exits 4.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { AuditEvent } from '../../api/src/index.ts';
import { runCli } from '../../cli/src/main.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { buildBundle } from './support.ts';

const run = promisify(execFile);

let upstream: TestUpstream;
let sidecar: TestSidecar;
let spool: string;
let session: string;
let events: AuditEvent[];
let vlogs: VictoriaLogsServer;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function requestEvent(path: string): AuditEvent {
  const ev = events.find((e) => e.kind === 'request' && e.request?.path === path && e.decision);
  if (!ev) throw new Error(`no request event for ${path} in ${events.map((e) => `${e.kind} ${e.request?.path ?? ''}`).join(', ')}`);
  return ev;
}

interface Explained {
  recorded: { action: string; code: string; revision: string };
  evaluated: { action: string; code: string; revision: string };
  revision: string;
  reproduced: boolean;
  decided_by: string;
  rules: { code: string; file: string; line: number; text: string; reads: { path: string; value?: unknown; recorded: boolean }[] }[];
  index: { from: string };
  notes: string[];
}

beforeAll(async () => {
  const ca = await createTestCa();
  upstream = await startHttpsUpstream(ca, ['registry.npmjs.org', 'api.github.com'], echoHandler);
  spool = join(mkdtempSync(join(tmpdir(), 'sluice-explain-spool-')), 'spool');
  vlogs = await VictoriaLogsServer.start();
  sidecar = await startTestSidecar({
    resolve: { 'registry.npmjs.org:443': upstream.dial, 'api.github.com:443': upstream.dial },
    extraRootsFiles: [ca.caFile],
    config: { audit: { spoolDir: spool, spool: { fsync: 'none' }, loki: { url: vlogs.pushUrl, lingerMs: 5 } } },
  });
  session = sidecar.sessionId;
  const curl = (args: string[]) => run('curl', ['-sS', '-o', '/dev/null', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, ...args]).catch(() => undefined);
  await curl(['https://registry.npmjs.org/express']); // allow: registry.read
  await curl(['-X', 'POST', '-d', '{}', 'https://api.github.com/gists']); // deny: git.paste_denied
  await curl(['-X', 'POST', '-d', '{}', 'https://api.github.com/repos/acme/app/issues']); // hold: no approvals backend here
  await curl(['https://paste.example/upload']); // CONNECT refused: a refusal event
  await sidecar.stop(); // session_end, then a bounded drain to the store
  await vlogs.flush();
  const c = await cli(['replay', session, '--spool', spool, '-o', 'json']);
  expect(c.code).toBe(0);
  events = c.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent);
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  await vlogs?.stop();
});

describe('policy explain on recorded events', () => {
  test('an allowed registry read: the rule, its line in policies/rego and the values it read', async () => {
    const ev = requestEvent('/express');
    expect(ev.decision).toMatchObject({ action: 'allow', code: 'registry.read' });
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(ev.seq), '--spool', spool, '-o', 'json']);
    expect(res.code).toBe(0);
    const e = JSON.parse(res.out) as Explained;
    expect(e).toMatchObject({ reproduced: true, revision: 'match', decided_by: 'policy', recorded: { code: 'registry.read' }, evaluated: { action: 'allow', code: 'registry.read' }, index: { from: 'sources' } });
    expect(e.rules).toHaveLength(1);
    const rule = e.rules[0]!;
    expect(rule.file).toBe('policies/rego/registries.rego');
    // the line named is the one in the source that holds the code
    expect(readFileSync(join(import.meta.dirname, '..', '..', rule.file), 'utf8').split('\n')[rule.line - 1]).toContain('"registry.read"');
    expect(rule.reads).toContainEqual({ path: 'input.request.host', value: 'registry.npmjs.org', recorded: true });
  });

  test('a denied paste: deny, the rule that denied, the human text names file:line', async () => {
    const ev = requestEvent('/gists');
    expect(ev.decision).toMatchObject({ action: 'deny', code: 'git.paste_denied' });
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(ev.seq), '--spool', spool]);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/recorded +deny git\.paste_denied/);
    expect(res.out).toMatch(/evaluated +deny git\.paste_denied .*: reproduced/);
    expect(res.out).toMatch(/git\.paste_denied +policies\/rego\/git\.rego:\d+ +rule sluice\.git\.verdicts \(priority 90\)/);
    expect(res.out).toContain('input.request.path = "/gists"');
  });

  test('a held API write: hold, both rules that can produce its code, and what audit events do not record', async () => {
    const ev = requestEvent('/repos/acme/app/issues');
    expect(ev.decision).toMatchObject({ action: 'hold', code: 'git.api_write_requires_approval' });
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(ev.seq), '--spool', spool, '-o', 'yaml']);
    expect(res.code).toBe(0);
    expect(res.out).toContain('decided_by: policy');
    expect(res.out).toMatch(/evaluated:\n(?: {2}.*\n)*? {2}action: hold/);
    expect(res.out.match(/- code: git\.api_write_requires_approval/g)).toHaveLength(2);
    expect(res.out).toContain('- input.request.headers');
    // which of the two fired: the pinned OPA's trace over the sources (acme/app is the organisation's)
    const rules = (parseYaml(res.out) as { rules: { start: number; fired?: boolean; text: string }[] }).rules;
    expect(rules.map((r) => r.fired)).toEqual([false, true]);
    expect(rules[1]!.text).toContain('own_api_repo');
  });

  test('read from the log store (VictoriaLogs) the sidecar shipped the session to, as replay reads it', async () => {
    const ev = requestEvent('/gists');
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(ev.seq), '--victorialogs', vlogs.url, '-o', 'json']);
    expect([res.code, res.err]).toEqual([0, '']);
    expect(JSON.parse(res.out)).toMatchObject({ reproduced: true, revision: 'match', event: { seq: ev.seq, session }, recorded: { code: 'git.paste_denied' } });
  });

  test('the response event of a request is explained through its request event', async () => {
    const request = requestEvent('/express');
    const response = events.find((e) => e.kind === 'response' && e.request_id === request.request_id)!;
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(response.seq), '--spool', spool, '-o', 'json']);
    expect(res.code).toBe(0);
    expect((JSON.parse(res.out) as Explained).recorded.code).toBe('registry.read');
  });

  test('from a replay export (--seq picks the line) and from a one-event file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-explain-'));
    const file = join(dir, 'session.ndjson');
    writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
    const ev = requestEvent('/gists');
    expect((await cli(['policy', 'explain', file, '--seq', String(ev.seq)])).code).toBe(0);
    const many = await cli(['policy', 'explain', file]);
    expect(many).toMatchObject({ code: 2, err: expect.stringContaining('pick one with --seq N') });
    const single = join(dir, 'one.json');
    writeFileSync(single, JSON.stringify(ev));
    expect((await cli(['policy', 'explain', single])).code).toBe(0);
  });

  test('a refused CONNECT records no request: exit 4, the recorded code and the rule that names it', async () => {
    const refusal = events.find((e) => e.kind === 'refusal' && (e.detail as { name?: string }).name === 'paste.example')!;
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(refusal.seq), '--spool', spool]);
    expect(res.code).toBe(4);
    expect(res.out).toContain('note: not re-evaluated: a refusal event records no request');
    expect(res.out).toMatch(/net\.not_allowlisted +policies\/rego\/decision\.rego:\d+/);
    expect(res.err).toContain('not reproduced');
  });

  test('a bundle of another revision: the explanation is printed under a warning and exits 3', async () => {
    const other = buildBundle({ extraRego: 'package sluice.extra\n\nmarker := true\n' });
    const ev = requestEvent('/gists');
    const res = await cli(['policy', 'explain', '--session', session, '--seq', String(ev.seq), '--spool', spool, '--bundle', other.path]);
    expect(res.code).toBe(3);
    expect(res.out).toMatch(/^!! POLICY REVISION MISMATCH: the event was decided by revision [0-9a-f]{12}, this explanation evaluates /);
    expect(res.err).toContain(`pass --bundle with a build of ${ev.decision!.revision}`);
    // without a rules.json of its revision beside it, locations come from the bundle's stored copies
    expect(res.out).toContain('line in the bundle\u2019s stored copy');
  });

  test('usage mistakes exit 2', async () => {
    expect(await cli(['policy', 'explain'])).toMatchObject({ code: 2, err: expect.stringContaining('give an audit event') });
    expect(await cli(['policy', 'explain', '--session', session, '--spool', spool])).toMatchObject({ code: 2, err: expect.stringContaining('--session needs --seq') });
    expect(await cli(['policy', 'explain', '--session', session, '--seq', '99999', '--spool', spool])).toMatchObject({ code: 2, err: expect.stringContaining('no event #99999') });
    expect(await cli(['policy', 'explain', '--session', session, '--seq', 'x', '--spool', spool])).toMatchObject({ code: 2 });
  });
});
