// Failures of credential injection that the proxy acts on. Each has a stable code (metric label,
// audit reason, docs/credentials.md row) and the HTTP status the agent gets. A provider failure
// names the provider in its message; no message ever carries a credential value, a token or a
// signature (callers pass only codes, statuses and names into them). The status of each code is
// its row in the code catalogue (api/src/codes.ts).
import { codeStatus } from '../../../api/src/codes.ts';
import type { Catalogued } from '../../../api/src/codes.ts';

export type CredentialErrorCode = Catalogued<
  /** The provider's endpoint could not be reached, timed out or answered 5xx/throttled (503). */
  | 'credentials.provider_unavailable'
  /** The provider answered and refused (4xx: bad token, access denied) or answered nonsense (502). */
  | 'credentials.provider_rejected'
  /** The projected service-account token for the audience is missing, unreadable or expired (503). */
  | 'credentials.subject_token_unavailable'
  /** The decision names a provider, profile, role or secret that config does not define (502). */
  | 'credentials.not_configured'
  /** The decision names a provider sluice does not know (502). */
  | 'credentials.unknown_provider'
  /** Config forbids this credential for the destination host (502). */
  | 'credentials.host_not_allowed'
  /** The destination is plain HTTP: credentials only ever leave over TLS (403). */
  | 'credentials.plaintext_refused'
  /** The mounted static secret cannot be read (503). */
  | 'credentials.secret_unavailable'
  /** An AWS request shape sluice cannot re-sign: SigV2, SigV4A, ECDSA-signed streaming (501). */
  | 'credentials.aws_signature_unsupported'
  /** The agent's SigV4 authorization could not be parsed (400). */
  | 'credentials.aws_signature_malformed'
  /** The agent's presigned URL has expired (403): sluice does not extend it. */
  | 'credentials.aws_presign_expired'
  /** A body that must be hashed is larger than the configured bound and the service has no unsigned-payload mode (413). */
  | 'credentials.aws_body_too_large'
  /** The body did not match the payload hash the agent declared, or an aws-chunked body is malformed (400). */
  | 'credentials.aws_body_invalid'
  /** The agent's x-amz-(source-)expected-bucket-owner names another account than the one sluice makes S3 check (403). */
  | 'credentials.aws_bucket_owner_conflict'
  /** A fault in sluice itself while injecting (502). */
  | 'credentials.internal_error'
>;

export class CredentialError extends Error {
  readonly code: CredentialErrorCode;
  readonly status: number;
  /** The provider involved (metric label), e.g. `aws-sts`. */
  readonly provider: string;
  constructor(code: CredentialErrorCode, provider: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CredentialError';
    this.code = code;
    this.status = codeStatus(code);
    this.provider = provider;
  }
}
