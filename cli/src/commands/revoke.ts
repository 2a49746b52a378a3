// `kubectl sluice revoke POD|SESSION`: withdraws every standing grant (session or ttl scope) of a
// pod or of one sidecar session, by moving its approved ApprovalRequests to Revoked. The sidecar
// sees that on its watch and asks again next time. Needs the same approver rights as approve.
import type { Command } from 'commander';
import type { ApprovalRequest } from '../../../api/src/index.ts';
import { podSelector, sessionSelector } from '../../../lib/src/approvals/labels.ts';
import { CliError, EXIT_USAGE } from '../errors.ts';
import type { Io } from '../program.ts';
import { addKubeOptions, apiFailure, connect } from './approvals.ts';
import type { KubeFlags } from './approvals.ts';

/** Approved requests whose scope still stands (session, or ttl not yet expired). */
export function standingGrants(items: readonly ApprovalRequest[], nowMs: number): ApprovalRequest[] {
  return items.filter((a) => {
    const s = a.status;
    if (s?.state !== 'Approved') return false;
    if (s.scope === 'session') return true;
    return s.scope === 'ttl' && s.expiresAt !== undefined && Date.parse(s.expiresAt) > nowMs;
  });
}

async function revokeCommand(target: string, flags: KubeFlags, io: Io): Promise<void> {
  const conn = await connect(flags);
  const where = `namespace ${conn.namespace}`;
  let items: ApprovalRequest[];
  try {
    items = (await conn.api.list(conn.namespace, podSelector(target))).items;
    if (!items.length) items = (await conn.api.list(conn.namespace, sessionSelector(target))).items;
  } catch (err) {
    apiFailure(err, `approval requests in ${where}`);
  }
  if (!items.length) throw new CliError(`not found: no approval requests for a pod or session named ${target} in ${where}`, EXIT_USAGE);
  const grants = standingGrants(items, Date.now());
  if (!grants.length) {
    io.out(`nothing to revoke: ${target} has no standing session or ttl grants in ${where}\n`);
    return;
  }
  for (const g of grants) {
    const name = g.metadata.name ?? '';
    try {
      await conn.api.patchStatus(conn.namespace, name, { state: 'Revoked' }, g.metadata.resourceVersion as string);
    } catch (err) {
      apiFailure(err, `approval request ${conn.namespace}/${name}`);
    }
    io.out(`revoked ${conn.namespace}/${name}: ${g.spec.request.summary} (scope ${g.status?.scope ?? ''})\n`);
  }
}

export function registerRevokeCommand(program: Command, io: Io): void {
  addKubeOptions(
    program
      .command('revoke')
      .description("withdraw a pod's or a session's standing grants (session and ttl scopes)")
      .argument('<pod-or-session>', 'pod name, or sidecar session id'),
  ).action((target: string, flags: KubeFlags) => revokeCommand(target, flags, io));
}
