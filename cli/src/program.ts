// Builds the kubectl-sluice command tree. Each verb lives in its own module under commands/ and
// registers itself here; main.ts only runs the program and maps errors to exit codes.
import { Command } from 'commander';
import { registerApprovalsCommand } from './commands/approvals.ts';
import { registerCheckCommand } from './commands/check.ts';
import { registerCompletionCommand } from './commands/completion.ts';
import { registerApproveCommand } from './commands/approve.ts';
import { registerDenyCommand } from './commands/deny.ts';
import { registerKillCommand } from './commands/kill.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerReplayCommand } from './commands/replay.ts';
import { registerRevokeCommand } from './commands/revoke.ts';
import { registerSessionsCommand } from './commands/sessions.ts';
import { registerVerifyCommand } from './commands/verify.ts';
import { registerVersionCommand } from './commands/version.ts';
import { addGlobalKubeOptions, handDownGlobals } from './kube.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export function buildProgram(io: Io): Command {
  const program = new Command('kubectl-sluice')
    .description('Approve, inspect and audit AI-agent traffic guarded by sluice')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .configureHelp({ showGlobalOptions: true })
    .exitOverride();
  // kubectl's connection flags are global: accepted before or after the verb, handed to the verb
  // that runs (whose own -n, if it has one, is the same flag).
  addGlobalKubeOptions(program);
  program.hook('preAction', (root, action) => handDownGlobals(root, action));
  registerVersionCommand(program, io);
  registerCheckCommand(program, io);
  registerPolicyCommands(program, io);
  registerApprovalsCommand(program, io);
  registerApproveCommand(program, io);
  registerDenyCommand(program, io);
  registerRevokeCommand(program, io);
  registerKillCommand(program, io);
  registerSessionsCommand(program, io);
  registerReplayCommand(program, io);
  registerVerifyCommand(program, io);
  registerCompletionCommand(program, io);
  return program;
}
