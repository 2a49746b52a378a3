// Lists the audit sessions a log store holds, by namespace and pod, with what happened in each
// (events, requests, holds, denies, masked events) — the index an investigator starts from before
// `replay`. The counting runs in the store (LogsQL stats on VictoriaLogs, LogQL metric queries on
// Loki), so a busy cluster's events never travel to the CLI. Read-only, like session-source.
import type { StoreSource } from './session-source.ts';
import { SessionSourceError, parseRfc3339Nano, rfc3339Nano, storeGet } from './session-source.ts';

export interface SessionSummary {
  namespace: string;
  pod: string;
  session: string;
  events: number;
  requests: number;
  holds: number;
  denies: number;
  /** Events that carry at least one redaction. */
  masked: number;
  /** First and last event time (RFC 3339); absent where the store cannot say (Loki). */
  first?: string;
  last?: string;
}

export interface ListSessionsOptions {
  namespace?: string | undefined;
  pod?: string | undefined;
  /** Sessions with events at or after this time (ms since the epoch). */
  sinceMs: number;
  nowMs?: number;
  signal?: AbortSignal | undefined;
}

/** Label values are written into a query: only what a Kubernetes name can be passes. */
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function selector(opts: ListSessionsOptions): string {
  const parts: string[] = [];
  for (const [label, value] of [['namespace', opts.namespace], ['pod', opts.pod]] as const) {
    if (value === undefined) continue;
    if (!NAME.test(value) || value.length > 253) throw new SessionSourceError('source.bad_selector', `${label} ${JSON.stringify(value)} is not a Kubernetes name`);
    parts.push(`${label}="${value}"`);
  }
  // Every audit stream carries a session label; this matches them all when nothing narrows it.
  if (!parts.length) parts.push('session=~".+"');
  return `{${parts.join(', ')}}`;
}

/** Sorted newest activity first (then by pod and session, so output is stable). */
export function sortSessions(rows: SessionSummary[]): SessionSummary[] {
  return rows.sort((a, b) => (b.last ?? '').localeCompare(a.last ?? '') || a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod) || a.session.localeCompare(b.session));
}

export async function listSessions(source: StoreSource, opts: ListSessionsOptions): Promise<SessionSummary[]> {
  return sortSessions(source.kind === 'loki' ? await listFromLoki(source, opts) : await listFromVictoriaLogs(source, opts));
}

// --- VictoriaLogs: one LogsQL stats query -----------------------------------------------------

const VL_STATS = [
  'count() events',
  'count() if (kind:=request) requests',
  'count() if (decision.action:=hold) holds',
  'count() if (decision.action:=deny) denies',
  'count() if (masking:*) masked',
  'min(_time) first',
  'max(_time) last',
].join(', ');

export function victoriaLogsSessionsQuery(opts: ListSessionsOptions): string {
  return `${selector(opts)} | unpack_json fields (kind, decision.action, masking) | stats by (namespace, pod, session) ${VL_STATS}`;
}

async function listFromVictoriaLogs(source: StoreSource, opts: ListSessionsOptions): Promise<SessionSummary[]> {
  const url = new URL(`${source.url.replace(/\/+$/, '')}/select/logsql/query`);
  url.searchParams.set('query', victoriaLogsSessionsQuery(opts));
  url.searchParams.set('start', rfc3339Nano(BigInt(opts.sinceMs) * 1_000_000n));
  url.searchParams.set('end', rfc3339Nano(BigInt((opts.nowMs ?? Date.now()) + 60_000) * 1_000_000n));
  const text = await storeGet(source, url, 'LogsQL stats query', opts.signal);
  const rows: SessionSummary[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new SessionSourceError('source.query_failed', 'VictoriaLogs answered a line that is not JSON');
    }
    const str = (k: string): string => (typeof r[k] === 'string' ? r[k] : '');
    const num = (k: string): number => Number(str(k)) || 0;
    const time = (k: string): string | undefined => {
      const t = str(k);
      // Normalised through ns so both ends print alike.
      return t ? rfc3339Nano(parseRfc3339Nano(t)) : undefined;
    };
    rows.push({
      namespace: str('namespace'),
      pod: str('pod'),
      session: str('session'),
      events: num('events'),
      requests: num('requests'),
      holds: num('holds'),
      denies: num('denies'),
      masked: num('masked'),
      ...(time('first') ? { first: time('first') } : {}),
      ...(time('last') ? { last: time('last') } : {}),
    });
  }
  return rows;
}

// --- Loki: one instant metric query per count ------------------------------------------------

interface VectorResponse {
  data?: { resultType?: string; result?: { metric?: Record<string, string>; value?: [number, string] }[] };
}

/** LogQL per column; `json` extracts the nested decision.action the same way LogsQL's unpack does. */
export function lokiSessionsQueries(opts: ListSessionsOptions, windowSeconds: number): Record<'events' | 'requests' | 'holds' | 'denies' | 'masked', string> {
  const sel = selector(opts);
  const count = (pipeline: string): string => `sum by (namespace, pod, session) (count_over_time(${sel}${pipeline} [${windowSeconds}s]))`;
  return {
    events: count(''),
    requests: count(' | json kind="kind" | kind="request"'),
    holds: count(' | json action="decision.action" | action="hold"'),
    denies: count(' | json action="decision.action" | action="deny"'),
    // Canonical JSON has no space after the colon; an escaped quote inside a string cannot match.
    masked: count(' |= `"masking":[`'),
  };
}

async function listFromLoki(source: StoreSource, opts: ListSessionsOptions): Promise<SessionSummary[]> {
  const nowMs = opts.nowMs ?? Date.now();
  const windowSeconds = Math.max(1, Math.ceil((nowMs - opts.sinceMs) / 1000));
  const rows = new Map<string, SessionSummary>();
  for (const [column, query] of Object.entries(lokiSessionsQueries(opts, windowSeconds)) as [keyof ReturnType<typeof lokiSessionsQueries>, string][]) {
    const url = new URL(`${source.url.replace(/\/+$/, '')}/loki/api/v1/query`);
    url.searchParams.set('query', query);
    url.searchParams.set('time', (BigInt(nowMs) * 1_000_000n).toString());
    const text = await storeGet(source, url, 'query', opts.signal);
    let body: VectorResponse;
    try {
      body = JSON.parse(text) as VectorResponse;
    } catch {
      throw new SessionSourceError('source.query_failed', 'Loki query answered something that is not JSON');
    }
    for (const r of body.data?.result ?? []) {
      const m = r.metric ?? {};
      const key = `${m.namespace}\u0000${m.pod}\u0000${m.session}`;
      const row = rows.get(key) ?? { namespace: m.namespace ?? '', pod: m.pod ?? '', session: m.session ?? '', events: 0, requests: 0, holds: 0, denies: 0, masked: 0 };
      row[column] = Number(r.value?.[1]) || 0;
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}
