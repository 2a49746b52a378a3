// The investigator's questions of docs/audit.md, asked of the real store: a recorder configured with
// `store: {type: victorialogs}` ships a scripted session (a held git push approved by a person, a
// masked secret, a denied host, an event too large for the store) to VictoriaLogs, and every
// LogsQL query the doc gives must appear there verbatim and return the expected rows. The
// oversized event is stored as an `omitted` stub that verify accepts and names. Every LogsQL query of
// the chart's Audit trail dashboard runs too, with Grafana's variables filled, and finds rows.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { request } from 'undici';
import type { AuditRecord } from '../../api/src/index.ts';
import { auditTrail } from '../../charts/src/dashboards/audit-trail.ts';
import { buildDashboard, dashboardLogsQueries } from '../../charts/src/dashboards/panels.ts';
import type { DashboardJson } from '../../charts/src/dashboards/panels.ts';
import { verifyChain } from '../../lib/src/audit/chain.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';

jest.setTimeout(120_000);

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'audit.md'), 'utf8');
const pod = { namespace: 'agents', name: 'coder-0', service_account: 'coder' };

let store: VictoriaLogsServer;
let spoolDir: string;
let session: string;
let oversizedSeq: number;

async function logsql(query: string): Promise<Record<string, string>[]> {
  const res = await request(`${store.url}/select/logsql/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query, start: '1d' }).toString(),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`VictoriaLogs refused ${query}: ${res.statusCode} ${text}`);
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string>);
}

beforeAll(async () => {
  store = await VictoriaLogsServer.start();
  spoolDir = mkdtempSync(join(tmpdir(), 'sluice-questions-'));
  // The server runs with -loki.disableMessageParsing; the store type adds disable_message_parsing=1
  // to every push as well, so a store without the flag keeps the lines byte for byte too.
  const rec = new AuditRecorder({
    spoolDir,
    pod,
    creator: { username: 'alice@example.com', groups: ['dev'] },
    store: { type: 'victorialogs', url: store.url, lingerMs: 0, retryInitialMs: 20, retryMaxMs: 200 },
    spool: { fsync: 'none' },
  });
  session = (await rec.start()).session;
  const push: AuditRecord = {
    kind: 'request',
    pod,
    request_id: 'r1',
    request: {
      method: 'POST',
      scheme: 'https',
      host: 'github.com',
      port: 443,
      path: '/acme/app.git/git-receive-pack',
      facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: 'a'.repeat(40), new: 'b'.repeat(40) }] } },
    },
    decision: { action: 'hold', code: 'git.push_requires_approval', reason: 'pushes need approval' },
  };
  await rec.record(push);
  await rec.record({ kind: 'approval', pod, detail: { type: 'decided', name: 'coder-0-7f3k2', requestIds: ['r1'], outcome: 'approved', decidedBy: 'bob@example.com', waitedMs: 41_000 } });
  await rec.record({ kind: 'response', pod, request_id: 'r1', status: 200, masking: [{ rule: 'github-pat', direction: 'response', offset: 120 }] });
  await rec.record({ kind: 'request', pod, request_id: 'r2', request: { method: 'GET', scheme: 'https', host: 'paste.example', port: 443, path: '/new' }, decision: { action: 'deny', code: 'network.default_deny', reason: 'host not allowed' } });
  // Over the default maxEntryBytes (256 KiB, Loki's default max_line_size): shipped as a stub.
  const big = await rec.record({ kind: 'response', pod, request_id: 'r3', status: 200, body_sample: 'x'.repeat(300 * 1024) });
  oversizedSeq = big!.seq;
  expect(await rec.whenShipped(AbortSignal.timeout(30_000))).toBe(true);
  await rec.stop();
  await store.flush();
});

afterAll(async () => {
  await store?.stop();
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
});

/** Each LogsQL query of docs/audit.md's ten questions, with what it must find in the session above. */
const QUESTIONS: { query: string; check: (rows: Record<string, string>[]) => void }[] = [
  {
    query: '_stream:{namespace="agents"} | unpack_json | filter kind:=request request.facts.git.operation:=push | fields _time, pod, session, request_id, request.facts.git.repo, decision.action',
    check: (rows) => expect(rows).toEqual([expect.objectContaining({ pod: 'coder-0', session, request_id: 'r1', 'request.facts.git.repo': 'acme/app', 'decision.action': 'hold' })]),
  },
  {
    query: '_stream:{namespace="agents"} | unpack_json | filter kind:=approval detail.type:=decided | fields _time, pod, detail.name, detail.requestIds, detail.outcome, detail.decidedBy, detail.waitedMs',
    check: (rows) =>
      expect(rows).toEqual([expect.objectContaining({ pod: 'coder-0', 'detail.name': 'coder-0-7f3k2', 'detail.requestIds': '["r1"]', 'detail.outcome': 'approved', 'detail.decidedBy': 'bob@example.com' })]),
  },
  {
    query: '_stream:{namespace="agents"} | unpack_json | filter decision.action:=deny | stats by (pod, decision.code) count() denies',
    check: (rows) => expect(rows).toEqual([{ pod: 'coder-0', 'decision.code': 'network.default_deny', denies: '1' }]),
  },
  {
    query: '_stream:{namespace="agents",pod="coder-0"} | unpack_json | filter kind:=response masking:* | fields _time, session, request_id, masking',
    check: (rows) => expect(rows).toEqual([expect.objectContaining({ session, request_id: 'r1', masking: '[{"direction":"response","offset":120,"rule":"github-pat"}]' })]),
  },
  {
    query: '_stream:{namespace="agents",pod="coder-0"} | unpack_json | filter kind:=request | stats by (request.host, decision.action) count() requests',
    check: (rows) =>
      expect(rows).toEqual(
        expect.arrayContaining([
          { 'request.host': 'github.com', 'decision.action': 'hold', requests: '1' },
          { 'request.host': 'paste.example', 'decision.action': 'deny', requests: '1' },
        ]),
      ),
  },
  {
    query: '_stream:{namespace="agents"} | unpack_json | filter kind:=session_start | fields _time, pod, session, creator.username, pod.service_account',
    check: (rows) => expect(rows).toEqual([expect.objectContaining({ pod: 'coder-0', session, 'creator.username': 'alice@example.com', 'pod.service_account': 'coder' })]),
  },
  {
    query: '_stream:{namespace="agents"} | unpack_json | filter kind:=dropped or omitted.reason:* | fields _time, pod, session, seq, kind, omitted.reason, omitted.bytes, detail.reason, detail.omitted, detail.count',
    check: (rows) => {
      expect(rows).toHaveLength(2);
      expect(rows).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ seq: String(oversizedSeq), 'omitted.reason': 'over_max_entry_bytes' }),
          expect.objectContaining({ kind: 'dropped', 'detail.reason': 'over_max_entry_bytes', 'detail.omitted': expect.stringContaining(`"seq":${oversizedSeq}`) }),
        ]),
      );
    },
  },
];

describe("docs/audit.md's investigator queries against the real VictoriaLogs", () => {
  test.each(QUESTIONS.map((q) => [q.query, q] as const))('%s', async (query, q) => {
    expect(DOC).toContain(query);
    q.check(await logsql(query));
  });

  test('the stored session verifies; the oversized event is named as omitted, its stub announced by a chained event', async () => {
    const events = await store.sessionEvents(session);
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true, omitted: [oversizedSeq] });
    // Every other line is stored byte for byte: the chain verifies over them.
    expect(events.filter((e) => 'omitted' in e)).toHaveLength(1);
  });
});

describe('the Audit trail dashboard against the real VictoriaLogs', () => {
  const queries = dashboardLogsQueries(buildDashboard(auditTrail) as DashboardJson);
  test.each(queries.map((q) => [q.where, q.expr] as const))('%s', async (_where, expr) => {
    const rows = await logsql(expr.replaceAll('$namespace', 'agents').replaceAll('$pod', 'coder-0'));
    expect(rows.length).toBeGreaterThan(0);
  });
});
