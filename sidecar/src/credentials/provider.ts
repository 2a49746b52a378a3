// The shape every credential provider has: given the upstream request prepared by the proxy and
// the policy's `credential` parameters, put a credential on it (or re-sign it) and say which
// values must never be echoed back to the agent. Providers never log values and never put one
// into an error.
import type { UpstreamRequest } from '../proxy/request-context.ts';

export type CredentialSpec = { provider: string } & Record<string, string | number | boolean>;

export interface InjectionTarget {
  host: string;
  port: number;
  scheme: 'http' | 'https';
  /** AWS service and region from the request's facts, when it is an AWS call. */
  aws?: { service: string; region: string };
}

export interface Injection {
  /** False when the request went on without a credential (an unsigned AWS request). */
  injected: boolean;
  /** Values that must not reach the agent (redacted from the response if the upstream echoes them). */
  secrets: string[];
}

export interface CredentialProvider {
  readonly name: string;
  /** False for static secrets: flagged in metrics so teams see where JIT is not yet used. */
  readonly jit: boolean;
  inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection>;
}

/** A string parameter of the decision's credential spec, if present. */
export function specString(spec: CredentialSpec, name: string): string | undefined {
  const v = spec[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Puts `value` on the request as the configured header. The agent's own Authorization (and any
 * value it sent in the configured header) is dropped. Accept-Encoding becomes identity (no header
 * would allow any coding, RFC 9110 §12.5.3), so the answer arrives uncompressed and an echoed
 * credential can be found and redacted.
 */
export function setCredentialHeader(up: UpstreamRequest, header: string, scheme: string, value: string): void {
  delete up.headers.authorization;
  delete up.headers[header];
  up.headers['accept-encoding'] = 'identity';
  up.headers[header] = scheme ? `${scheme} ${value}` : value;
}
