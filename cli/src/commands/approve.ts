// `kubectl sluice approve ID [--scope once|session|ttl] [--ttl 30m]`: approves a held request as
// the caller's kubeconfig identity. The change is a status patch conditional on the version read,
// so it cannot overwrite someone else's decision; the sluice webhook stamps who decided and refuses
// self-approval and non-approvers, and the API server's refusal is printed as it is.
import type { Command } from 'commander';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import type { Io } from '../program.ts';
import { addKubeOptions, apiFailure, connect, stateOf } from './approvals.ts';
import type { Connection, KubeFlags } from './approvals.ts';

const TTL = /^[0-9]+[smh]$/;

function describe(obj: ApprovalRequest): string {
  const s = obj.status;
  if (!s) return 'Pending';
  return `${s.state}${s.decidedBy ? ` by ${s.decidedBy}` : ''}${s.decidedAt ? ` at ${s.decidedAt}` : ''}${s.revokedBy ? `, revoked by ${s.revokedBy}` : ''}`;
}

/**
 * Reads the request, refuses when it is already decided, and patches its status against the
 * version read. One retry when someone else touched it in between (the sidecar marking it Pending).
 */
export async function decide(conn: Connection, name: string, status: Partial<ApprovalRequestStatus>): Promise<ApprovalRequest> {
  const what = `approval request ${conn.namespace}/${name}`;
  for (let attempt = 0; ; attempt++) {
    let current: ApprovalRequest;
    try {
      current = await conn.api.get(conn.namespace, name);
    } catch (err) {
      apiFailure(err, `${what} (list them with \`kubectl sluice approvals -n ${conn.namespace}\`)`);
    }
    if (stateOf(current) !== 'Pending') throw new CliError(`already decided: ${what} is ${describe(current)}`, EXIT_FAILED);
    try {
      return await conn.api.patchStatus(conn.namespace, name, status, current.metadata.resourceVersion as string);
    } catch (err) {
      if (err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_CONFLICT' && attempt === 0) continue;
      apiFailure(err, what);
    }
  }
}

interface ApproveFlags extends KubeFlags {
  scope?: string;
  ttl?: string;
}

async function approveCommand(name: string, flags: ApproveFlags, io: Io): Promise<void> {
  if (flags.scope !== undefined && !['once', 'session', 'ttl'].includes(flags.scope)) throw new CliError(`--scope ${flags.scope}: expected once, session or ttl`, EXIT_USAGE);
  if (flags.ttl !== undefined && !TTL.test(flags.ttl)) throw new CliError(`--ttl ${flags.ttl}: expected a duration such as 30m or 8h`, EXIT_USAGE);
  const scope = flags.scope ?? (flags.ttl ? 'ttl' : undefined);
  if (flags.ttl && scope !== 'ttl') throw new CliError(`--ttl only goes with --scope ttl`, EXIT_USAGE);
  const conn = await connect(flags);
  // Without --scope the webhook grants what the policy asked for (spec.requestedScope).
  const status: Partial<ApprovalRequestStatus> = { state: 'Approved', ...(scope ? { scope: scope as ApprovalRequestStatus['scope'] } : {}), ...(flags.ttl ? { ttl: flags.ttl } : {}) };
  const done = await decide(conn, name, status);
  const s = done.status;
  io.out(
    `approved ${conn.namespace}/${name}: ${done.spec.request.summary} (scope ${s?.scope ?? scope ?? done.spec.requestedScope}${s?.expiresAt ? ` until ${s.expiresAt}` : ''}${s?.decidedBy ? `, by ${s.decidedBy}` : ''})\n`,
  );
}

export function registerApproveCommand(program: Command, io: Io): void {
  addKubeOptions(
    program
      .command('approve')
      .description('approve a held request (it is forwarded at once)')
      .argument('<id>', 'ApprovalRequest name (see `kubectl sluice approvals`)')
      .option('--scope <scope>', "once | session | ttl (default: the scope the policy asked for)")
      .option('--ttl <duration>', 'with --scope ttl: how long the grant lasts, e.g. 30m'),
  ).action((name: string, flags: ApproveFlags) => approveCommand(name, flags, io));
}
