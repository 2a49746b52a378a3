// The store readers behind `kubectl sluice replay|verify`, against answers in each store's own
// documented format. Loki's query_range is served from recorded responses (testdata/loki): Loki is
// AGPL and not built here, so this is where its query side is pinned. VictoriaLogs runs for real in
// e2e/audit; here its request shape (LogsQL, nanosecond range, tenant headers) is pinned.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { listSessions, lokiSessionsQueries, victoriaLogsSessionsQuery } from '../../../lib/src/audit/session-list.ts';
import { SessionSourceError, collectSession, parseRfc3339Nano, rfc3339Nano, storeHeaders } from '../../../lib/src/audit/session-source.ts';

const TESTDATA = join(import.meta.dirname, 'testdata', 'loki');
const recorded = (name: string): string => readFileSync(join(TESTDATA, name), 'utf8');

interface Seen {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
let answer: (s: Seen) => { status: number; body: string } = () => ({ status: 404, body: '' });

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const s = { path: url.pathname, query: url.searchParams, headers: req.headers };
    seen.push(s);
    const { status, body } = answer(s);
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('Loki query_range (recorded responses)', () => {
  it('pages forward from the last timestamp, neither repeating nor losing the boundary entry', async () => {
    seen.length = 0;
    answer = (s) => {
      const start = BigInt(s.query.get('start')!);
      if (start < 1765100000000000001n) return { status: 200, body: recorded('query_range-page1.json') };
      if (start === 1765100000000000003n) return { status: 200, body: recorded('query_range-page2.json') };
      return { status: 200, body: recorded('query_range-empty.json') };
    };
    const items = await collectSession({ kind: 'loki', url: `${base}/`, tenant: 'team-a' }, { session: 's-loki-1', pageSize: 3, fromMs: 1765099999000 });
    expect(items.map((i) => (i.value as { seq: number }).seq)).toEqual([0, 1, 2, 3]);
    expect(items.map((i) => i.ts)).toEqual([1765100000000000001n, 1765100000000000002n, 1765100000000000003n, 1765100000000000004n]);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ path: '/loki/api/v1/query_range' });
    expect(seen[0]!.query.get('query')).toBe('{session="s-loki-1"}');
    expect(seen[0]!.query.get('direction')).toBe('forward');
    expect(seen[0]!.query.get('limit')).toBe('3');
    expect(seen[0]!.headers['x-scope-orgid']).toBe('team-a');
  });

  it('a refusal is source.query_failed with the status, never an empty session', async () => {
    answer = () => ({ status: 400, body: 'parse error at line 1, col 2: syntax error' });
    await expect(collectSession({ kind: 'loki', url: base }, { session: 's-loki-1' })).rejects.toMatchObject({ code: 'source.query_failed', message: expect.stringContaining('400') });
    answer = () => ({ status: 200, body: '<html>gateway</html>' });
    await expect(collectSession({ kind: 'loki', url: base }, { session: 's-loki-1' })).rejects.toBeInstanceOf(SessionSourceError);
  });
});

describe('VictoriaLogs LogsQL', () => {
  it('asks for the session sorted by time within a nanosecond range, with the tenant headers', async () => {
    seen.length = 0;
    const rows = [
      { _time: '2025-12-07T09:33:20.000000001Z', _msg: '{"kind":"session_start","session":"s-vl-1","seq":0}' },
      { _time: '2025-12-07T09:33:20.5Z', _msg: '{"kind":"session_end","session":"s-vl-1","seq":1}' },
    ];
    answer = () => ({ status: 200, body: rows.map((r) => JSON.stringify(r)).join('\n') + '\n' });
    const items = await collectSession({ kind: 'victorialogs', url: base, tenant: '7:3' }, { session: 's-vl-1', fromMs: 1765100000000 });
    expect(items.map((i) => i.line)).toEqual(rows.map((r) => r._msg));
    expect(items.map((i) => i.ts)).toEqual([1765100000000000001n, 1765100000500000000n]);
    expect(seen[0]!.path).toBe('/select/logsql/query');
    expect(seen[0]!.query.get('query')).toBe('{session="s-vl-1"} | sort by (_time) | limit 1000 | fields _time, _msg');
    expect(seen[0]!.query.get('start')).toBe('2025-12-07T09:33:20.000000000Z');
    expect(seen[0]!.headers).toMatchObject({ accountid: '7', projectid: '3' });
  });

  it('refuses a tenant that is not AccountID[:ProjectID]', () => {
    expect(() => storeHeaders({ kind: 'victorialogs', url: base, tenant: 'team-a' })).toThrow(/AccountID/);
    expect(storeHeaders({ kind: 'victorialogs', url: base, tenant: '12' })).toEqual({ accountid: '12' });
  });

  it('round-trips nanosecond timestamps through RFC 3339', () => {
    for (const ns of [0n, 1n, 1765100000123456789n, 1765100000000000000n]) expect(parseRfc3339Nano(rfc3339Nano(ns))).toBe(ns);
    expect(() => parseRfc3339Nano('yesterday')).toThrow(SessionSourceError);
  });
});

describe('listing sessions', () => {
  it('Loki: one instant metric query per column, merged by namespace/pod/session', async () => {
    seen.length = 0;
    answer = (s) => {
      const q = s.query.get('query')!;
      if (q.includes('"hold"')) return { status: 200, body: recorded('query-vector-holds.json') };
      if (q.includes('| json') || q.includes('|=')) return { status: 200, body: recorded('query_range-empty.json').replace('"streams"', '"vector"') };
      return { status: 200, body: recorded('query-vector-events.json') };
    };
    const rows = await listSessions({ kind: 'loki', url: base }, { namespace: 'agents', sinceMs: 1765096400000, nowMs: 1765100000000 });
    expect(rows).toEqual([
      { namespace: 'agents', pod: 'agent-0', session: 's-a', events: 12, requests: 0, holds: 2, denies: 0, masked: 0 },
      { namespace: 'agents', pod: 'agent-1', session: 's-b', events: 3, requests: 0, holds: 0, denies: 0, masked: 0 },
    ]);
    expect(seen.map((s) => s.path)).toEqual(Array(5).fill('/loki/api/v1/query'));
    expect(seen[0]!.query.get('query')).toBe('sum by (namespace, pod, session) (count_over_time({namespace="agents"} [3600s]))');
    expect(seen[0]!.query.get('time')).toBe('1765100000000000000');
  });

  it('writes only Kubernetes names into a query (no LogQL/LogsQL injection through a pod name)', async () => {
    expect(lokiSessionsQueries({ pod: 'agent-0', sinceMs: 0 }, 60).holds).toBe(
      'sum by (namespace, pod, session) (count_over_time({pod="agent-0"} | json action="decision.action" | action="hold" [60s]))',
    );
    expect(victoriaLogsSessionsQuery({ sinceMs: 0 })).toMatch(/^\{session=~"\.\+"\} \| unpack_json/);
    await expect(listSessions({ kind: 'victorialogs', url: base }, { pod: 'x"} or {', sinceMs: 0 })).rejects.toMatchObject({ code: 'source.bad_selector' });
  });
});

describe('exact copies in a store', () => {
  it('an entry re-sent after a crash (same timestamp, same bytes) is read once; a differing one is kept for verify to judge', async () => {
    const line = (seq: number, extra = '') => `{"kind":"request","session":"s-dup","seq":${seq}${extra}}`;
    const rows = [
      { _time: '2025-12-07T09:33:20.000000001Z', _msg: line(0) },
      { _time: '2025-12-07T09:33:20.000000002Z', _msg: line(1) },
      { _time: '2025-12-07T09:33:20.000000002Z', _msg: line(1) },
      { _time: '2025-12-07T09:33:20.000000002Z', _msg: line(1, ',"x":1') },
      { _time: '2025-12-07T09:33:20.000000003Z', _msg: line(2) },
    ];
    answer = () => ({ status: 200, body: rows.map((r) => JSON.stringify(r)).join('\n') });
    const items = await collectSession({ kind: 'victorialogs', url: base }, { session: 's-dup', fromMs: 1765100000000 });
    expect(items.map((i) => i.line)).toEqual([line(0), line(1), line(1, ',"x":1'), line(2)]);
  });
});
