// Failures of the audit recorder that its caller acts on. Each has a stable code: the proxy turns
// `retryable` ones into a 503 for the agent, metrics count them by code, docs/audit.md lists them.
// A recorder error must never crash the process: every I/O failure surfaces as one of these.
import type { Catalogued } from '../../../api/src/codes.ts';

export type AuditErrorCode = Catalogued<
  /** The spool holds its configured maximum of unshipped bytes (onFull: fail-closed). */
  | 'audit.spool_full'
  /** The disk refused a write, sync, truncate or rename (ENOSPC, EIO, EROFS, ...). */
  | 'audit.spool_io'
  /** record() before start() finished, or after stop() began. */
  | 'audit.not_running'
  /** The record cannot be serialised or does not match the audit event schema. */
  | 'audit.bad_record'
  /** The spool directory holds data this version cannot read. */
  | 'audit.spool_corrupt'
>;

export class AuditError extends Error {
  readonly code: AuditErrorCode;
  /** errno code of the underlying system error, when there is one. */
  readonly errno: string | undefined;
  /** True when a later attempt may succeed (the proxy answers 503 rather than 500). */
  readonly retryable: boolean;
  constructor(code: AuditErrorCode, message: string, options: { cause?: unknown; errno?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuditError';
    this.code = code;
    this.errno = options.errno;
    this.retryable = code === 'audit.spool_full' || code === 'audit.spool_io' || code === 'audit.not_running';
  }
}

/** Wraps a failed file-system call as `audit.spool_io`, keeping the errno. */
export function spoolIoError(what: string, err: unknown): AuditError {
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  return new AuditError('audit.spool_io', `${what}: ${detail}`, { cause: err, ...(errno ? { errno } : {}) });
}
