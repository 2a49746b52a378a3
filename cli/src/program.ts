// Builds the kubectl-sluice command tree. Each verb lives in its own module under commands/ and
// registers itself here; main.ts only runs the program and maps errors to exit codes.
import { Command } from 'commander';
import { registerApprovalsCommand } from './commands/approvals.ts';
import { registerApproveCommand } from './commands/approve.ts';
import { registerDenyCommand } from './commands/deny.ts';
import { registerKillCommand } from './commands/kill.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerReplayCommand } from './commands/replay.ts';
import { registerRevokeCommand } from './commands/revoke.ts';
import { registerSessionsCommand } from './commands/sessions.ts';
import { registerVerifyCommand } from './commands/verify.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export function buildProgram(io: Io): Command {
  const program = new Command('kubectl-sluice')
    .description('Approve, inspect and audit AI-agent traffic guarded by sluice')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  registerPolicyCommands(program, io);
  registerApprovalsCommand(program, io);
  registerApproveCommand(program, io);
  registerDenyCommand(program, io);
  registerRevokeCommand(program, io);
  registerKillCommand(program, io);
  registerSessionsCommand(program, io);
  registerReplayCommand(program, io);
  registerVerifyCommand(program, io);
  return program;
}
