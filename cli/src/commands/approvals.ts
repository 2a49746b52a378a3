// `kubectl sluice approvals [-n NS] [-A] [--watch]`: the requests waiting for a human, as a table.
// Also the pieces every approval verb shares: the caller's kubeconfig identity (like any kubectl
// plugin: KUBECONFIG, --kubeconfig, --context, -n), and API failures turned into one-line errors
// with stable exit codes (not found → 2, forbidden / already decided / unreachable → 1).
// Read-only: listing never changes an ApprovalRequest.
import type { Command } from 'commander';
import { UNKNOWN_CREATOR_USERNAME } from '../../../api/src/index.ts';
import type { ApprovalRequest } from '../../../api/src/index.ts';
import { ApprovalApi } from '../../../lib/src/approvals/approval-api.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import type { KubeRest } from '../../../lib/src/approvals/kube-rest.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import { kubeClient } from '../kube.ts';
import type { GlobalKubeFlags } from '../kube.ts';
import { formatData, parseOutput } from '../output.ts';
import type { Io } from '../program.ts';

export type KubeFlags = GlobalKubeFlags;

/**
 * The kubeconfig flags (--kubeconfig, --context, -n, --as, --as-group, --request-timeout) are
 * global now (kube.ts): the root accepts them anywhere and hands them to the verb that runs.
 */
export function addKubeOptions(cmd: Command): Command {
  return cmd;
}

export interface Connection {
  api: ApprovalApi;
  rest: KubeRest;
  namespace: string;
}

export async function connect(flags: KubeFlags): Promise<Connection> {
  // One client for every verb: the global kubeconfig flags (--as, --request-timeout, …) included.
  const { rest, namespace } = await kubeClient(flags);
  return { api: new ApprovalApi(rest), rest, namespace };
}

/** What went wrong talking to the API server, as the person at the terminal needs to read it. */
export function apiFailure(err: unknown, what: string): never {
  if (!(err instanceof ApprovalApiError)) throw err;
  switch (err.code) {
    case 'SLUICE_APPROVAL_API_NOT_FOUND':
      throw new CliError(`not found: ${what}`, EXIT_USAGE);
    case 'SLUICE_APPROVAL_API_FORBIDDEN':
      throw new CliError(`forbidden: ${err.message}`, EXIT_FAILED);
    case 'SLUICE_APPROVAL_API_CONFLICT':
      throw new CliError(`conflict: ${what} changed while we were deciding it; run the command again`, EXIT_FAILED);
    default:
      throw new CliError(`${what}: ${err.message}`, EXIT_FAILED);
  }
}

export function stateOf(obj: ApprovalRequest): string {
  return obj.status?.state ?? 'Pending';
}

/** 42s, 5m, 3h, 2d — the resolution kubectl uses for ages. */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function created(obj: ApprovalRequest): number {
  return Date.parse((obj.metadata.creationTimestamp as string | undefined) ?? '') || Date.now();
}

export interface TableOptions {
  allNamespaces: boolean;
  showState: boolean;
  nowMs: number;
  /** -o wide: also the state, the decider, the session and the code the policy held with */
  wide?: boolean;
}

/** Rows as kubectl prints them: upper-case headers, columns padded to the widest cell. */
export function approvalsTable(items: readonly ApprovalRequest[], o: TableOptions, header = true): string {
  const states = o.showState || o.wide === true;
  const head = [...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'POD', 'CREATOR', 'SUMMARY', 'SCOPE', ...(states ? ['STATE', 'DECIDED-BY'] : []), 'AGE', 'EXPIRES', ...(o.wide ? ['SESSION', 'CODE'] : [])];
  const rows = items.map((a) => {
    const state = stateOf(a);
    const scope = a.status?.scope ?? a.spec.requestedScope;
    const expires = state === 'Pending' ? shortDuration(Date.parse(a.spec.expiresAt) - o.nowMs) : a.status?.expiresAt ? shortDuration(Date.parse(a.status.expiresAt) - o.nowMs) : '-';
    return [
      ...(o.allNamespaces ? [a.metadata.namespace ?? ''] : []),
      a.metadata.name ?? '',
      a.spec.pod.name,
      // No stamp, or the stamp of a controller-made pod whose owners carry none: nobody may approve.
      a.spec.creator && a.spec.creator.username !== UNKNOWN_CREATOR_USERNAME ? a.spec.creator.username : '<unknown>',
      a.spec.request.summary,
      scope,
      ...(states ? [state, a.status?.revokedBy ?? a.status?.decidedBy ?? '-'] : []),
      shortDuration(o.nowMs - created(a)),
      expires,
      ...(o.wide ? [a.spec.session, a.spec.code] : []),
    ];
  });
  const all = header ? [head, ...rows] : rows;
  const widths = head.map((_h, i) => Math.max(...[head, ...rows].map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n') + (all.length ? '\n' : '');
}

interface ListFlags extends KubeFlags {
  allNamespaces?: boolean;
  watch?: boolean;
  allStates?: boolean;
  output?: string;
}

async function listCommand(flags: ListFlags, io: Io): Promise<void> {
  const output = parseOutput(flags.output);
  if (flags.watch && (output === 'json' || output === 'yaml')) throw new CliError(`--watch prints table rows; it does not go with --output ${output}`, EXIT_USAGE);
  const { api, namespace } = await connect(flags);
  const ns = flags.allNamespaces ? undefined : namespace;
  const where = ns ? `namespace ${ns}` : 'any namespace';
  let list;
  try {
    list = await api.list(ns);
  } catch (err) {
    apiFailure(err, `approval requests in ${where}`);
  }
  const shown = (a: ApprovalRequest) => flags.allStates || stateOf(a) === 'Pending';
  const byAge = list.items.filter(shown).sort((a, b) => created(a) - created(b));
  if (output === 'json' || output === 'yaml') {
    // What `kubectl get -o json` prints for several objects: a v1 List (empty when none wait).
    io.out(formatData({ apiVersion: 'v1', kind: 'List', items: byAge }, output));
    return;
  }
  const table = { allNamespaces: flags.allNamespaces === true, showState: flags.allStates === true || flags.watch === true, nowMs: Date.now(), wide: output === 'wide' };
  if (!byAge.length && !flags.watch) {
    io.err(`No pending approval requests in ${where}.\n`);
    return;
  }
  io.out(approvalsTable(byAge, table));
  if (!flags.watch) return;
  // Like `kubectl get -w`: one row per change, until interrupted.
  const handle = await api
    .watch(ns, { resourceVersion: list.resourceVersion, timeoutSeconds: 3600 }, (e) => {
      if (e.type !== 'ADDED' && e.type !== 'MODIFIED') return;
      io.out(approvalsTable([e.object], { ...table, nowMs: Date.now() }, false));
    })
    .catch((err: unknown) => apiFailure(err, `watching approval requests in ${where}`));
  const stop = () => handle.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const ended = await handle.done;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (ended) apiFailure(ended, `watching approval requests in ${where}`);
}

export function registerApprovalsCommand(program: Command, io: Io): void {
  addKubeOptions(
    program
      .command('approvals')
      .description('list approval requests waiting for a decision')
      .option('-A, --all-namespaces', 'list across every namespace')
      .option('-w, --watch', 'after listing, print a row for every new or changed request')
      .option('--all-states', 'include decided requests (Approved, Denied, Expired, Revoked)')
      .option('-o, --output <format>', 'text, wide, json or yaml', 'text'),
  ).action((flags: ListFlags) => listCommand(flags, io));
}
