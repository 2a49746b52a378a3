// Reads one session's audit events back, in stored order, from Loki (query_range, paged), from a
// spool directory, or from an NDJSON export; optionally following new events. Used by `kubectl
// sluice replay|verify` and by the tests that prove what reached the store. Read-only: it must
// never write to the store or the spool, and never reorder what the store returned (verification
// judges that order).
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { SESSION_ID_PATTERN } from './config.ts';
import { completeLines } from './spool.ts';

export type SessionSource =
  | { kind: 'loki'; url: string; tenant?: string | undefined; headers?: Record<string, string>; dispatcher?: Dispatcher }
  | { kind: 'spool'; dir: string }
  | { kind: 'file'; path: string };

export interface ReadSessionOptions {
  session: string;
  /** Only events at or after this time (ms since the epoch). */
  fromMs?: number | undefined;
  /** Keep polling for new events until a session_end arrives or the signal aborts. */
  follow?: boolean;
  pollMs?: number;
  signal?: AbortSignal | undefined;
  /** Loki only: how far back to look when fromMs is not given (its default max query length is 30 days). */
  lookbackMs?: number;
  /**
   * Loki only: entries per query_range call. Default 1000: Loki caps a page at 5000 entries, and
   * its internal 4 MB gRPC message limit refuses 5000 audit events of about 1 KB.
   */
  pageSize?: number;
}

/** One stored line: `value` is the parsed event, or the raw text when it is not JSON. */
export interface StoredItem {
  line: string;
  value: unknown;
  /** Loki's entry timestamp (ns) when read from Loki. */
  ts?: bigint;
}

export class SessionSourceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
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
      yield* readLoki(source, opts);
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

// --- Loki ------------------------------------------------------------------------------------

interface QueryRangeResponse {
  status?: string;
  data?: { resultType?: string; result?: { stream?: Record<string, string>; values?: [string, string][] }[] };
}

async function queryRangePage(
  source: Extract<SessionSource, { kind: 'loki' }>,
  session: string,
  startNs: bigint,
  endNs: bigint,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<{ ts: bigint; line: string }[]> {
  const url = new URL(`${source.url.replace(/\/+$/, '')}/loki/api/v1/query_range`);
  url.searchParams.set('query', `{session="${session}"}`);
  url.searchParams.set('start', startNs.toString());
  url.searchParams.set('end', endNs.toString());
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('direction', 'forward');
  let res;
  try {
    res = await request(url, {
      method: 'GET',
      headers: { ...source.headers, ...(source.tenant ? { 'x-scope-orgid': source.tenant } : {}) },
      ...(source.dispatcher ? { dispatcher: source.dispatcher } : {}),
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    throw new SessionSourceError('source.unreachable', `cannot reach Loki at ${source.url}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    throw new SessionSourceError('source.query_failed', `Loki query_range answered ${res.statusCode}: ${text.slice(0, 300).trim()}`);
  }
  let body: QueryRangeResponse;
  try {
    body = JSON.parse(text) as QueryRangeResponse;
  } catch {
    throw new SessionSourceError('source.query_failed', 'Loki query_range answered something that is not JSON');
  }
  const entries: { ts: bigint; line: string }[] = [];
  for (const stream of body.data?.result ?? []) for (const [ts, line] of stream.values ?? []) entries.push({ ts: BigInt(ts), line });
  // A session is one stream, but merge defensively: stable sort by timestamp only.
  entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  return entries;
}

async function* readLoki(source: Extract<SessionSource, { kind: 'loki' }>, opts: ReadSessionOptions): AsyncGenerator<StoredItem> {
  const limit = opts.pageSize ?? 1000;
  const nowNs = (): bigint => BigInt(Date.now() + 60_000) * 1_000_000n;
  let startNs = BigInt(opts.fromMs ?? Date.now() - (opts.lookbackMs ?? 30 * DAY_MS)) * 1_000_000n;
  // Entries at the boundary timestamp were yielded already; a page may start with them again.
  let boundary = new Set<string>();
  for (;;) {
    const page = await queryRangePage(source, opts.session, startNs, nowNs(), limit, opts.signal);
    let ended = false;
    const fresh = page.filter((e) => !(e.ts === startNs && boundary.has(e.line)));
    for (const e of fresh) {
      const item = { ...parseLine(e.line), ts: e.ts };
      if (!wanted(item, opts)) continue;
      ended ||= isEnd(item.value);
      yield item;
    }
    if (page.length) {
      const lastTs = page.at(-1)!.ts;
      if (lastTs !== startNs) boundary = new Set();
      for (const e of page) if (e.ts === lastTs) boundary.add(e.line);
      startNs = lastTs;
    }
    if (page.length >= limit && fresh.length) continue;
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
