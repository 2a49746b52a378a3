// Errors the CLI turns into a message and an exit code instead of a stack trace.
export const EXIT_OK = 0;
/** The command ran and reported a negative result (a failed verify, failing Rego tests). */
export const EXIT_FAILED = 1;
/** The user's input was wrong: bad flags, unreadable or schema-violating files. */
export const EXIT_USAGE = 2;

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT_USAGE) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
