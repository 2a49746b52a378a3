// Schema pieces every credential provider's config section is built from (host patterns, header
// names, profile names, URLs) and the host check they share. Only zod: the config schema of the
// whole sidecar (and the CNI agent and chart generator that read it) imports this without loading
// any provider's implementation.
import { z } from 'zod';

export const Seconds = (min: number, max: number) => z.number().int().min(min).max(max);
/** An exact host or `*.suffix` (any subdomain, never the bare suffix), as in the Rego library. */
export const HostPattern = z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a lower-case host name or *.suffix');
export const HeaderName = z
  .string()
  .regex(/^[a-z0-9-]+$/, 'a lower-case header name')
  .refine((h) => !['host', 'content-length', 'transfer-encoding', 'connection'].includes(h), 'a header sluice may set');
export const Url = z.url({ protocol: /^https?$/ });
/** Auth scheme put before the value (`Bearer`, `token`); empty: the value alone. */
export const Scheme = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/).or(z.literal(''));
export const ProfileName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'a lower-case name');

/** Exact host or `*.suffix` (any subdomain, never the bare suffix). */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1)) : h === p));
}
