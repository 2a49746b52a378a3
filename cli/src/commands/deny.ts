// `kubectl sluice deny ID --reason …`: refuses a held request as the caller's kubeconfig identity.
// The agent gets the reason in its 403 (for `git push`, in git's own output). Same conditional
// status patch as approve; the sluice webhook stamps who decided.
import type { Command } from 'commander';
import { CliError, EXIT_USAGE } from '../errors.ts';
import type { Io } from '../program.ts';
import { addKubeOptions, connect } from './approvals.ts';
import type { KubeFlags } from './approvals.ts';
import { decide } from './approve.ts';

interface DenyFlags extends KubeFlags {
  reason: string;
}

async function denyCommand(name: string, flags: DenyFlags, io: Io): Promise<void> {
  const reason = flags.reason.trim();
  if (!reason) throw new CliError('--reason must say why (the agent and the audit trail show it)', EXIT_USAGE);
  const conn = await connect(flags);
  const done = await decide(conn, name, { state: 'Denied', reason });
  io.out(`denied ${conn.namespace}/${name}: ${done.spec.request.summary}${done.status?.decidedBy ? ` (by ${done.status.decidedBy})` : ''}\n`);
}

export function registerDenyCommand(program: Command, io: Io): void {
  addKubeOptions(
    program
      .command('deny')
      .description('deny a held request (the agent gets a 403 with the reason)')
      .argument('<id>', 'ApprovalRequest name (see `kubectl sluice approvals`)')
      .requiredOption('--reason <text>', 'why; shown to the agent and recorded'),
  ).action((name: string, flags: DenyFlags) => denyCommand(name, flags, io));
}
