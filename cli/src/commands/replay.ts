// `kubectl sluice replay SESSION`: reads a session's audit events back from Loki, VictoriaLogs, a
// spool directory or an NDJSON export and prints them as a timeline (request, decision, masked response
// summary) or, with --output json, as the stored NDJSON lines (which `verify --file` accepts).
// Read-only: it never writes to the store or the spool.
import type { Command } from 'commander';
import { WebSocketBatchDetail, WebSocketEndDetail } from '../../../api/src/index.ts';
import type { AuditEvent } from '../../../api/src/index.ts';
import { SessionSourceError, readSession } from '../../../lib/src/audit/session-source.ts';
import type { SessionSource, StoreSource, StoredItem } from '../../../lib/src/audit/session-source.ts';
import { OmittedStub } from '../../../lib/src/audit/chain.ts';
import { listSessions } from '../../../lib/src/audit/session-list.ts';
import { CliError, EXIT_USAGE } from '../errors.ts';
import type { Io } from '../program.ts';

export interface SourceFlags {
  loki?: string;
  victorialogs?: string;
  tenant?: string;
  spool?: string;
  file?: string;
}

/** Adds the flags that pick where a session is read from. */
export function addSourceOptions(cmd: Command): Command {
  return cmd
    .option('--loki <url>', 'read from Loki at this base URL (default: $SLUICE_LOKI_URL)')
    .option('--victorialogs <url>', 'read from VictoriaLogs at this base URL (default: $SLUICE_VICTORIALOGS_URL)')
    .option('--tenant <id>', 'store tenant: Loki X-Scope-OrgID, or VictoriaLogs AccountID[:ProjectID] (default: $SLUICE_STORE_TENANT)', process.env.SLUICE_STORE_TENANT ?? process.env.SLUICE_LOKI_TENANT)
    .option('--spool <dir>', 'read from a sidecar spool directory')
    .option('--file <path>', 'read from an NDJSON export ("-" for stdin)');
}

export function sourceFromFlags(flags: SourceFlags): SessionSource {
  const picked = [flags.loki, flags.victorialogs, flags.spool, flags.file].filter((v) => v !== undefined).length;
  if (picked > 1) throw new CliError('give only one of --loki, --victorialogs, --spool, --file');
  if (flags.spool !== undefined) return { kind: 'spool', dir: flags.spool };
  if (flags.file !== undefined) return { kind: 'file', path: flags.file };
  const store = storeFromFlags(flags);
  if (store === undefined) {
    throw new CliError('no source: give --loki URL or --victorialogs URL (or set SLUICE_LOKI_URL / SLUICE_VICTORIALOGS_URL), --spool DIR or --file PATH');
  }
  return store;
}

/** The log store the flags (or the environment) name, if any. */
export function storeFromFlags(flags: SourceFlags): StoreSource | undefined {
  const fromFlag = flags.loki !== undefined ? 'loki' : flags.victorialogs !== undefined ? 'victorialogs' : undefined;
  const kind = fromFlag ?? (process.env.SLUICE_LOKI_URL ? 'loki' : process.env.SLUICE_VICTORIALOGS_URL ? 'victorialogs' : undefined);
  if (kind === undefined) return undefined;
  const url = (kind === 'loki' ? (flags.loki ?? process.env.SLUICE_LOKI_URL) : (flags.victorialogs ?? process.env.SLUICE_VICTORIALOGS_URL))!;
  try {
    new URL(url);
  } catch {
    throw new CliError(`--${kind} ${url} is not a URL`);
  }
  return { kind, url, tenant: flags.tenant };
}

/** Turns a reader failure into a CLI error: exit 2, "could not check", never "tampered". */
export function sourceFailure(err: unknown): never {
  if (err instanceof SessionSourceError) throw new CliError(`${err.message} (${err.code})`, EXIT_USAGE);
  throw err;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** --from: an RFC 3339 time, or a duration ago such as 30m, 2h, 7d. */
export function parseFromFlag(value: string, nowMs: number): number {
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) return nowMs - Number(rel[1]) * UNITS[rel[2]!]!;
  const at = Date.parse(value);
  if (Number.isNaN(at) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new CliError(`--from ${value}: expected an RFC 3339 time or a duration like 30m, 2h, 7d`);
  return at;
}

// --- timeline --------------------------------------------------------------------------------

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function factsSummary(ev: AuditEvent): string {
  const f = ev.request?.facts;
  if (!f) return '';
  if (f.git) return ` [git ${f.git.operation} ${f.git.repo}${f.git.refs?.length ? ` ${f.git.refs.map((r) => r.ref).join(',')}` : ''}]`;
  if (f.aws) return ` [aws ${f.aws.action} ${f.aws.region}${f.aws.bucket ? ` ${f.aws.bucket}` : ''}]`;
  if (f.k8s) return ` [k8s ${f.k8s.verb} ${f.k8s.resource}${f.k8s.namespace ? ` -n ${f.k8s.namespace}` : ''}${f.k8s.name ? ` ${f.k8s.name}` : ''}]`;
  if (f.llm) return ` [llm ${f.llm.provider} ${f.llm.endpoint}${f.llm.model ? ` ${f.llm.model}` : ''} prompt ${formatBytes(f.llm.prompt_bytes)}]`;
  return '';
}

function maskingSummary(ev: AuditEvent): string {
  if (!ev.masking?.length) return '';
  const byRule = new Map<string, number>();
  for (const m of ev.masking) byRule.set(m.rule, (byRule.get(m.rule) ?? 0) + 1);
  return ` masked ${ev.masking.length} (${[...byRule].map(([rule, n]) => `${rule}×${n}`).join(', ')})`;
}

function detailSummary(detail: Record<string, unknown> | undefined): string {
  if (!detail) return '';
  const parts = Object.entries(detail).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/** At most this much of a message sample is printed on its line. */
const SAMPLE_CHARS = 120;

/**
 * An event of a WebSocket connection: a window of messages (shape 2) is printed one message a
 * line, in the connection's order, under its event; the connection's end with its code. Shape 1
 * events (one message each) say their direction and kind. Empty for any other event.
 */
function websocketText(ev: AuditEvent): string {
  const w = ev.detail?.websocket;
  if (w === undefined || w === true) return '';
  const batch = WebSocketBatchDetail.safeParse(w);
  if (batch.success) {
    const arrow = batch.data.direction === 'out' ? '→' : '←';
    const lines = batch.data.messages.map((m) => {
      const t = `+${(m.t / 1000).toFixed(3)}s`;
      const close = m.close === undefined ? '' : ` ${m.close}`;
      const masked = m.masked?.length ? ` masked ${m.masked.join(',')}` : '';
      const frames = m.frames ? ` ${m.frames} frames` : '';
      const sample = m.text !== undefined ? ` ${JSON.stringify(m.text.length > SAMPLE_CHARS ? `${m.text.slice(0, SAMPLE_CHARS)}…` : m.text)}` : m.base64 !== undefined ? ` base64:${m.base64.slice(0, SAMPLE_CHARS)}` : '';
      const digest = m.sha256 ? ` sha256:${m.sha256.slice(0, 16)}…` : '';
      return `\n      ${arrow} ws #${m.n} ${t} ${m.kind}${close} ${formatBytes(m.bytes)}${frames}${masked}${sample}${digest}`;
    });
    const undelivered = batch.data.undelivered ? ' (not delivered: the connection ended first)' : '';
    return ` websocket ${batch.data.direction} ${batch.data.messages.length} message${batch.data.messages.length === 1 ? '' : 's'}${undelivered}${lines.join('')}`;
  }
  const end = WebSocketEndDetail.safeParse(w);
  if (end.success) {
    const e = end.data;
    return ` websocket end ${e.end} by ${e.by}${e.close === undefined ? '' : ` close ${e.close}`} (${e.messages.out} out, ${e.messages.in} in)${e.reason ? `: ${e.reason}` : ''}`;
  }
  const one = w as { direction?: unknown; kind?: unknown };
  return typeof one.direction === 'string' && typeof one.kind === 'string' ? ` websocket ${one.direction} ${one.kind}` : '';
}

/** One timeline line for an event (pure). */
export function formatTimelineLine(ev: AuditEvent): string {
  return timelineText(ev).trimEnd();
}

function timelineText(ev: AuditEvent): string {
  const head = `${ev.time}  #${String(ev.seq).padEnd(6)} ${ev.kind.padEnd(13)}`;
  const dec = ev.decision ? ` → ${ev.decision.action} ${ev.decision.code}${ev.decision.reason ? ` (${ev.decision.reason})` : ''}` : '';
  const req = ev.request_id ? ` req=${ev.request_id}` : '';
  switch (ev.kind) {
    case 'request': {
      const r = ev.request;
      const target = r ? `${r.method} ${r.scheme}://${r.host}${(r.scheme === 'https' && r.port === 443) || (r.scheme === 'http' && r.port === 80) ? '' : `:${r.port}`}${r.path}` : '';
      const out = ev.bytes ? ` out ${formatBytes(ev.bytes.out)}` : '';
      return `${head} ${target}${factsSummary(ev)}${dec}${out}${maskingSummary(ev)}${req}${websocketText(ev)}`;
    }
    case 'response': {
      const status = ev.status === undefined ? '' : ` ${ev.status}`;
      const bytes = ev.bytes ? ` in ${formatBytes(ev.bytes.in)} out ${formatBytes(ev.bytes.out)}` : '';
      const total = ev.timings?.total === undefined ? '' : ` ${ev.timings.total.toFixed(1)} ms`;
      const sample = ev.body_sample === undefined ? '' : ` body sample ${formatBytes(Buffer.byteLength(ev.body_sample))}`;
      return `${head}${status}${bytes}${total}${maskingSummary(ev)}${sample}${req}${websocketText(ev)}`;
    }
    case 'session_start': {
      const who = ev.creator ? ` creator ${ev.creator.username}` : '';
      return `${head} pod ${ev.pod.namespace}/${ev.pod.name}${who}${detailSummary(ev.detail)}`;
    }
    default:
      return `${head}${ev.request ? ` ${ev.request.method} ${ev.request.host}${ev.request.path}` : ''}${dec}${req}${detailSummary(ev.detail)}`;
  }
}

function formatItem(item: StoredItem): string {
  const v = item.value as Partial<AuditEvent> | string;
  if (typeof v === 'string' || typeof v.kind !== 'string' || typeof v.seq !== 'number' || typeof v.time !== 'string') {
    return `(unreadable stored line: ${item.line.slice(0, 120)})`;
  }
  const stub = OmittedStub.safeParse(v);
  if (stub.success) return formatOmittedLine(stub.data);
  return formatTimelineLine(v as AuditEvent);
}

/**
 * A stub the store holds instead of an event it refused as too large: said as such, so a reader
 * never takes it for the event (verify accepts it only where a chained `dropped` event announced it).
 */
export function formatOmittedLine(stub: OmittedStub): string {
  const status = stub.omitted.status === undefined ? '' : `, store answered ${stub.omitted.status}`;
  const req = stub.request_id ? ` req=${stub.request_id}` : '';
  return `${stub.time}  #${String(stub.seq).padEnd(6)} ${stub.kind.padEnd(13)} (omitted: ${formatBytes(stub.omitted.bytes)} not stored, ${stub.omitted.reason}${status})${req}`;
}

export interface ReplayFlags extends SourceFlags {
  pod?: string;
  namespace?: string;
  from?: string;
  follow?: boolean;
  output: string;
  pollMs?: string;
}

export async function replayCommand(session: string, flags: ReplayFlags, io: Io, signal?: AbortSignal): Promise<void> {
  if (flags.output !== 'text' && flags.output !== 'json') throw new CliError(`--output ${flags.output}: expected text or json`);
  const source = sourceFromFlags(flags);
  const fromMs = flags.from === undefined ? undefined : parseFromFlag(flags.from, Date.now());
  let count = 0;
  try {
    for await (const item of readSession(source, {
      session,
      fromMs,
      follow: flags.follow ?? false,
      pollMs: flags.pollMs === undefined ? 1000 : Number(flags.pollMs),
      signal,
    })) {
      count++;
      io.out(flags.output === 'json' ? `${item.line}\n` : `${formatItem(item)}\n`);
    }
  } catch (err) {
    sourceFailure(err);
  }
  if (count === 0 && flags.output === 'text') io.err(`no events found for session ${session}\n`);
}

/** The session named, or the latest session the store holds for --pod. */
export async function sessionToReplay(session: string | undefined, flags: ReplayFlags, io: Io): Promise<string> {
  if (session !== undefined && flags.pod !== undefined) throw new CliError('give a session id or --pod, not both');
  if (session !== undefined) return session;
  if (flags.pod === undefined) throw new CliError('give a session id, or --pod NAME to replay that pod\'s latest session');
  const store = storeFromFlags(flags);
  if (store === undefined) throw new CliError('--pod needs a log store: give --loki URL or --victorialogs URL');
  const nowMs = Date.now();
  let rows;
  try {
    rows = await listSessions(store, { namespace: flags.namespace, pod: flags.pod, sinceMs: flags.from === undefined ? nowMs - 30 * 86_400_000 : parseFromFlag(flags.from, nowMs), nowMs });
  } catch (err) {
    sourceFailure(err);
  }
  const latest = rows[0];
  if (latest === undefined) throw new CliError(`no session found for pod ${flags.pod}${flags.namespace ? ` in namespace ${flags.namespace}` : ''}`);
  if (rows.some((r) => r.namespace !== latest.namespace)) {
    throw new CliError(`pod ${flags.pod} has sessions in several namespaces (${[...new Set(rows.map((r) => r.namespace))].join(', ')}): give -n`);
  }
  io.err(`session ${latest.session} (pod ${latest.namespace}/${latest.pod}, ${rows.length} session${rows.length === 1 ? '' : 's'} found)\n`);
  return latest.session;
}

export function registerReplayCommand(program: Command, io: Io): void {
  const cmd = program
    .command('replay')
    .description('print a session\'s audit events as a timeline (request, decision, masked response summary)')
    .argument('[session]', 'session id (one per pod start); or give --pod')
    .option('--pod <name>', "replay this pod's latest session (read from the log store)")
    .option('-n, --namespace <ns>', 'with --pod: the pod\'s namespace')
    .option('--from <time>', 'start at this RFC 3339 time or this long ago (30m, 2h, 7d)')
    .option('-f, --follow', 'keep printing new events until the session ends (Ctrl-C stops)')
    .option('-o, --output <format>', 'text or json (the stored NDJSON lines)', 'text')
    .option('--poll-ms <ms>', 'how often --follow polls the source', '1000');
  addSourceOptions(cmd).action(async (session: string | undefined, flags: ReplayFlags) => {
    const ac = new AbortController();
    const onInt = (): void => ac.abort();
    process.once('SIGINT', onInt);
    try {
      await replayCommand(await sessionToReplay(session, flags, io), flags, io, ac.signal);
    } finally {
      process.off('SIGINT', onInt);
    }
  });
}
