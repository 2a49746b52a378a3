// Reads one session's audit events back, in stored order, from Loki (query_range, paged), from
// VictoriaLogs (LogsQL, paged), from a spool directory, or from an NDJSON export; optionally
// following new events. Used by `kubectl
// sluice replay|verify` and by the tests that prove what reached the store. Read-only: it must
// never write to the store or the spool, and never reorder what the store returned (verification
// judges that order).
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import type { AreaCode } from '../../../api/src/codes.ts';
import { SESSION_ID_PATTERN, completeLines } from './spool-format.ts';

/** A log store reached over HTTP: Loki's query API, or VictoriaLogs' LogsQL API. */
export interface StoreSource {
  kind: 'loki' | 'victorialogs';
  /** Base URL of the query API (Loki: before /loki/api/v1; VictoriaLogs: before /select). */
  url: string;
  /** Loki: X-Scope-OrgID. VictoriaLogs: `AccountID` or `AccountID:ProjectID`. */
  tenant?: string | undefined;
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
}

export type SessionSource = StoreSource | { kind: 'spool'; dir: string } | { kind: 'file'; path: string };

export interface ReadSessionOptions {
  session: string;
  /** Only events at or after this time (ms since the epoch). */
  fromMs?: number | undefined;
  /** Keep polling for new events until a session_end arrives or the signal aborts. */
  follow?: boolean;
  pollMs?: number;
  signal?: AbortSignal | undefined;
  /** Stores only: how far back to look when fromMs is not given (Loki's default max query length is 30 days). */
  lookbackMs?: number;
  /**
   * Stores only: entries per query call. Default 1000: Loki caps a page at 5000 entries, and
   * its internal 4 MB gRPC message limit refuses 5000 audit events of about 1 KB.
   */
  pageSize?: number;
}

/** One stored line: `value` is the parsed event, or the raw text when it is not JSON. */
export interface StoredItem {
  line: string;
  value: unknown;
  /** The store's entry timestamp (ns) when read from a store. */
  ts?: bigint;
}

export class SessionSourceError extends Error {
  readonly code: AreaCode<'source'>;
  constructor(code: AreaCode<'source'>, message: string) {
    super(message);
    this.name = 'SessionSourceError';
    this.code = code;
  }
}

const DAY_MS = 24 * 3600 * 1000;

function parseLine(line: string): StoredItem {
  try {
    return { line, value: JSON.parse(line) as unknown };
  } catch {
    return { line, value: line };
  }
}

function sessionOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (value as { session?: unknown }).session : undefined;
}

function timeOf(value: unknown): number | undefined {
  const t = typeof value === 'object' && value !== null ? (value as { time?: unknown }).time : undefined;
  return typeof t === 'string' ? Date.parse(t) : undefined;
}

function isEnd(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'session_end';
}

/** Lines of one session; unparseable lines are kept (verification must see them). */
function wanted(item: StoredItem, opts: ReadSessionOptions): boolean {
  if (typeof item.value === 'string') return true;
  if (sessionOf(item.value) !== opts.session) return false;
  if (opts.fromMs === undefined) return true;
  const t = timeOf(item.value);
  return t === undefined || t >= opts.fromMs;
}

/** Streams the session's stored items in stored order. */
export async function* readSession(source: SessionSource, opts: ReadSessionOptions): AsyncGenerator<StoredItem> {
  if (!SESSION_ID_PATTERN.test(opts.session)) {
    throw new SessionSourceError('source.bad_session', `session id ${JSON.stringify(opts.session)} is not a sluice session id`);
  }
  switch (source.kind) {
    case 'loki':
    case 'victorialogs':
      yield* readStore(source, opts);
      return;
    case 'spool':
      yield* readSpoolDir(source.dir, opts);
      return;
    case 'file':
      yield* readFileLines(source.path, opts);
      return;
  }
}

/** Reads the whole session into memory (verification needs all of it). */
export async function collectSession(source: SessionSource, opts: ReadSessionOptions): Promise<StoredItem[]> {
  const items: StoredItem[] = [];
  for await (const item of readSession(source, opts)) items.push(item);
  return items;
}

async function pollOrStop(opts: ReadSessionOptions): Promise<boolean> {
  if (opts.signal?.aborted) return false;
  try {
    await sleep(opts.pollMs ?? 1000, undefined, opts.signal ? { signal: opts.signal } : undefined);
    return true;
  } catch {
    return false;
  }
}

// --- log stores ------------------------------------------------------------------------------

/** One stored entry as a store returns it: its timestamp (ns) and the line byte for byte. */
export interface StoreEntry {
  ts: bigint;
  line: string;
}

interface QueryRangeResponse {
  status?: string;
  data?: { resultType?: string; result?: { stream?: Record<string, string>; values?: [string, string][] }[] };
}

function storeName(source: StoreSource): string {
  return source.kind === 'loki' ? 'Loki' : 'VictoriaLogs';
}

/** Request headers for a store: the caller's, plus the tenant in the store's own header(s). */
export function storeHeaders(source: StoreSource): Record<string, string> {
  const headers: Record<string, string> = { ...source.headers };
  if (source.tenant === undefined) return headers;
  if (source.kind === 'loki') {
    headers['x-scope-orgid'] = source.tenant;
  } else {
    const [account, project] = source.tenant.split(':');
    if (!/^\d+$/.test(account ?? '') || (project !== undefined && !/^\d+$/.test(project))) {
      throw new SessionSourceError('source.bad_tenant', `VictoriaLogs tenant ${JSON.stringify(source.tenant)} is not AccountID or AccountID:ProjectID (numbers)`);
    }
    headers.accountid = account!;
    if (project !== undefined) headers.projectid = project;
  }
  return headers;
}

/** GETs a store URL and returns the body text; any failure is a SessionSourceError. */
export async function storeGet(source: StoreSource, url: URL, what: string, signal: AbortSignal | undefined): Promise<string> {
  let res;
  try {
    res = await request(url, {
      method: 'GET',
      headers: storeHeaders(source),
      ...(source.dispatcher ? { dispatcher: source.dispatcher } : {}),
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    throw new SessionSourceError('source.unreachable', `cannot reach ${storeName(source)} at ${source.url}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    throw new SessionSourceError('source.query_failed', `${storeName(source)} ${what} answered ${res.statusCode}: ${text.slice(0, 300).trim()}`);
  }
  return text;
}

function storeUrl(source: StoreSource, path: string): URL {
  return new URL(`${source.url.replace(/\/+$/, '')}${path}`);
}

function byTimestamp(a: StoreEntry, b: StoreEntry): number {
  return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0;
}

async function lokiPage(source: StoreSource, session: string, startNs: bigint, endNs: bigint, limit: number, signal: AbortSignal | undefined): Promise<StoreEntry[]> {
  const url = storeUrl(source, '/loki/api/v1/query_range');
  url.searchParams.set('query', `{session="${session}"}`);
  url.searchParams.set('start', startNs.toString());
  url.searchParams.set('end', endNs.toString());
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('direction', 'forward');
  const text = await storeGet(source, url, 'query_range', signal);
  let body: QueryRangeResponse;
  try {
    body = JSON.parse(text) as QueryRangeResponse;
  } catch {
    throw new SessionSourceError('source.query_failed', 'Loki query_range answered something that is not JSON');
  }
  const entries: StoreEntry[] = [];
  for (const stream of body.data?.result ?? []) for (const [ts, line] of stream.values ?? []) entries.push({ ts: BigInt(ts), line });
  // A session is one stream, but merge defensively: stable sort by timestamp only.
  return entries.sort(byTimestamp);
}

/** RFC 3339 with nanoseconds, which VictoriaLogs' start/end arguments accept exactly. */
export function rfc3339Nano(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // ...T12:34:56.789Z
  return `${iso.slice(0, -1)}${(ns % 1_000_000n).toString().padStart(6, '0')}Z`;
}

/** Parses VictoriaLogs' `_time` (RFC 3339, up to nanoseconds) into ns since the epoch. */
export function parseRfc3339Nano(text: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!m) throw new SessionSourceError('source.query_failed', `VictoriaLogs returned a _time that is not RFC 3339 UTC: ${JSON.stringify(text)}`);
  const seconds = BigInt(Date.parse(`${m[1]!}Z`) / 1000);
  return seconds * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * One page of a session from VictoriaLogs. The line is `_msg`, which the store keeps byte for
 * byte only when pushes carry disable_message_parsing=1 (or it runs with
 * -loki.disableMessageParsing); otherwise it parsed the JSON into fields and the chain cannot be
 * verified from it — reported as a line that is not the event.
 */
async function victoriaLogsPage(source: StoreSource, session: string, startNs: bigint, endNs: bigint, limit: number, signal: AbortSignal | undefined): Promise<StoreEntry[]> {
  const url = storeUrl(source, '/select/logsql/query');
  url.searchParams.set('query', `{session="${session}"} | sort by (_time) | limit ${limit} | fields _time, _msg`);
  url.searchParams.set('start', rfc3339Nano(startNs));
  url.searchParams.set('end', rfc3339Nano(endNs));
  const text = await storeGet(source, url, 'LogsQL query', signal);
  const entries: StoreEntry[] = [];
  for (const row of text.split('\n')) {
    if (!row.trim()) continue;
    let value: { _time?: unknown; _msg?: unknown };
    try {
      value = JSON.parse(row) as typeof value;
    } catch {
      throw new SessionSourceError('source.query_failed', 'VictoriaLogs answered a line that is not JSON');
    }
    if (typeof value._time !== 'string') throw new SessionSourceError('source.query_failed', 'VictoriaLogs answered a row without _time');
    entries.push({ ts: parseRfc3339Nano(value._time), line: typeof value._msg === 'string' ? value._msg : '' });
  }
  return entries.sort(byTimestamp);
}

/**
 * Pages through a session in timestamp order. Each page starts at the last timestamp seen, so
 * entries at that boundary come again; an entry whose timestamp and bytes equal one already
 * yielded is skipped. The same rule drops what a shipper re-sent after a crash (at-least-once
 * delivery: the sidecar stamps each event's store timestamp itself, so a re-sent event is an exact
 * copy) — Loki drops such copies at ingest, VictoriaLogs keeps them, and replay reads both alike.
 * A copy that differs in any byte is not dropped: verification judges it.
 */
async function* readStore(source: StoreSource, opts: ReadSessionOptions): AsyncGenerator<StoredItem> {
  const page = source.kind === 'loki' ? lokiPage : victoriaLogsPage;
  const limit = opts.pageSize ?? 1000;
  const nowNs = (): bigint => BigInt(Date.now() + 60_000) * 1_000_000n;
  let startNs = BigInt(opts.fromMs ?? Date.now() - (opts.lookbackMs ?? 30 * DAY_MS)) * 1_000_000n;
  let groupTs = -1n;
  let group = new Set<string>();
  for (;;) {
    const entries = await page(source, opts.session, startNs, nowNs(), limit, opts.signal);
    let ended = false;
    let fresh = 0;
    for (const e of entries) {
      if (e.ts !== groupTs) {
        groupTs = e.ts;
        group = new Set();
      }
      if (group.has(e.line)) continue;
      group.add(e.line);
      fresh++;
      const item = { ...parseLine(e.line), ts: e.ts };
      if (!wanted(item, opts)) continue;
      ended ||= isEnd(item.value);
      yield item;
    }
    if (entries.length) startNs = entries.at(-1)!.ts;
    if (entries.length >= limit && fresh) continue;
    if (!opts.follow || ended) return;
    if (!(await pollOrStop(opts))) return;
  }
}

// --- spool directory and NDJSON file -----------------------------------------------------------

const SEGMENT_RE = /^seg-(\d{20})\.ndjson$/;

async function* readSpoolDir(dir: string, opts: ReadSessionOptions): AsyncGenerator<StoredItem> {
  let segment = -1;
  let offset = 0;
  for (;;) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw new SessionSourceError('source.unreadable', `cannot read spool directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const segments = names
      .map((n) => SEGMENT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .filter((n) => n >= segment)
      .sort((a, b) => a - b);
    let ended = false;
    for (const n of segments) {
      if (n !== segment) {
        segment = n;
        offset = 0;
      }
      let buf: Buffer;
      try {
        buf = await readFile(join(dir, `seg-${String(n).padStart(20, '0')}.ndjson`));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // trimmed after shipping
        throw new SessionSourceError('source.unreadable', `cannot read spool segment ${n}: ${(err as Error).message}`);
      }
      const { lines, consumed } = completeLines(buf.subarray(offset));
      offset += consumed;
      for (const line of lines) {
        if (!line.length) continue;
        const item = parseLine(line);
        if (!wanted(item, opts)) continue;
        ended ||= isEnd(item.value);
        yield item;
      }
    }
    if (!opts.follow || ended) return;
    if (!(await pollOrStop(opts))) return;
  }
}

async function* readFileLines(path: string, opts: ReadSessionOptions): AsyncGenerator<StoredItem> {
  let offset = 0;
  for (;;) {
    let buf: Buffer;
    try {
      const fh = path === '-' ? undefined : await open(path, 'r');
      if (!fh) {
        buf = await readStdin();
      } else {
        try {
          const size = (await fh.stat()).size;
          buf = Buffer.alloc(Math.max(0, size - offset));
          if (buf.length) await fh.read(buf, 0, buf.length, offset);
        } finally {
          await fh.close();
        }
      }
    } catch (err) {
      throw new SessionSourceError('source.unreadable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // A file read once may end without a newline; a followed one may be mid-write.
    const finalRead = path === '-' || !opts.follow;
    const { lines, consumed } = completeLines(finalRead && buf.length && buf.at(-1) !== 0x0a ? Buffer.concat([buf, Buffer.from('\n')]) : buf);
    offset += consumed;
    let ended = false;
    for (const line of lines) {
      if (!line.trim().length) continue;
      const item = parseLine(line);
      if (!wanted(item, opts)) continue;
      ended ||= isEnd(item.value);
      yield item;
    }
    if (path === '-' || !opts.follow || ended) return;
    if (!(await pollOrStop(opts))) return;
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
