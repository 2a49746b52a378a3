// Runs the CLI and turns every failure into a one-line message with a stable exit code.
import { CommanderError } from 'commander';
import { CliError, EXIT_FAILED, EXIT_USAGE } from './errors.ts';
import { buildProgram } from './program.ts';
import type { Io } from './program.ts';

export async function runCli(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}

/** Runs the CLI as the process: argv in, exit code out. The bundle's entry calls it directly. */
export async function runAsProcess(): Promise<void> {
  // `kubectl sluice replay … | head`: the reader went away; stop quietly like any Unix tool.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const code = await runCli(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  });
  process.exitCode = code;
}

// From a checkout (bin/kubectl-sluice.js or `node cli/src/main.ts`); a bundle (SLUICE_BUILD_KIND
// defined at bundle time) starts through its own entry instead.
const isEntry = process.env.SLUICE_BUILD_KIND === undefined && process.argv[1] !== undefined && /kubectl-sluice(\.js)?$|cli\/src\/main\.ts$/.test(process.argv[1]);
if (isEntry) void runAsProcess();
