// `kubectl sluice sessions`: the audit sessions a log store holds, by namespace, pod and time, with
// counts of requests, holds, denies and masked events — where an investigation starts ("which agent
// pushed, and when?") before `replay`. Read-only.
import type { Command } from 'commander';
import { listSessions } from '../../../lib/src/audit/session-list.ts';
import type { SessionSummary } from '../../../lib/src/audit/session-list.ts';
import { CliError } from '../errors.ts';
import { formatData } from '../output.ts';
import type { Io } from '../program.ts';
import { parseFromFlag, sourceFailure, storeFromFlags } from './replay.ts';
import type { SourceFlags } from './replay.ts';

export interface SessionsFlags extends SourceFlags {
  namespace?: string;
  pod?: string;
  since: string;
  output: string;
}

const COLUMNS: [string, (s: SessionSummary) => string][] = [
  ['NAMESPACE', (s) => s.namespace],
  ['POD', (s) => s.pod],
  ['SESSION', (s) => s.session],
  ['LAST', (s) => s.last?.replace(/\.\d+Z$/, 'Z') ?? '-'],
  ['EVENTS', (s) => String(s.events)],
  ['REQUESTS', (s) => String(s.requests)],
  ['HOLDS', (s) => String(s.holds)],
  ['DENIES', (s) => String(s.denies)],
  ['MASKED', (s) => String(s.masked)],
];

/** The table kubectl prints: header, columns padded to their widest cell. */
export function formatSessionsTable(rows: SessionSummary[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]! + 3))).join('')).join('\n') + '\n';
}

export async function sessionsCommand(flags: SessionsFlags, io: Io, nowMs = Date.now()): Promise<SessionSummary[]> {
  if (!['text', 'wide', 'json', 'yaml'].includes(flags.output)) throw new CliError(`--output ${flags.output}: expected text, wide, json or yaml`);
  const store = storeFromFlags(flags);
  if (store === undefined) throw new CliError('no log store: give --loki URL or --victorialogs URL (or set SLUICE_LOKI_URL / SLUICE_VICTORIALOGS_URL)');
  let rows: SessionSummary[];
  try {
    rows = await listSessions(store, { namespace: flags.namespace, pod: flags.pod, sinceMs: parseFromFlag(flags.since, nowMs), nowMs });
  } catch (err) {
    sourceFailure(err);
  }
  if (flags.output === 'json') io.out(`${JSON.stringify(rows, null, 2)}\n`);
  else if (flags.output === 'yaml') io.out(formatData(rows, 'yaml'));
  else if (rows.length) io.out(formatSessionsTable(rows));
  else io.err(`no sessions since ${flags.since}${flags.namespace ? ` in namespace ${flags.namespace}` : ''}${flags.pod ? ` for pod ${flags.pod}` : ''}\n`);
  return rows;
}

export function registerSessionsCommand(program: Command, io: Io): void {
  program
    .command('sessions')
    .description('list audit sessions by namespace and pod, with counts of requests, holds, denies and masked events')
    .option('-n, --namespace <ns>', 'only this namespace (default: every namespace)')
    .option('--pod <name>', 'only this pod')
    .option('--since <time>', 'sessions with events since this RFC 3339 time or this long ago (30m, 2h, 7d)', '24h')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .option('--loki <url>', 'Loki base URL (default: $SLUICE_LOKI_URL)')
    .option('--victorialogs <url>', 'VictoriaLogs base URL (default: $SLUICE_VICTORIALOGS_URL)')
    .option('--tenant <id>', 'store tenant: Loki X-Scope-OrgID, or VictoriaLogs AccountID[:ProjectID]', process.env.SLUICE_STORE_TENANT ?? process.env.SLUICE_LOKI_TENANT)
    .action(async (flags: SessionsFlags) => {
      await sessionsCommand(flags, io);
    });
}
