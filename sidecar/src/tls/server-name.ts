// Whether a server name the agent sent (a TLS SNI, a CONNECT host, a name it resolved through the
// fake-IP DNS) is one sluice may decide on and mint a leaf certificate for: a plain LDH hostname
// (letters, digits, hyphens and dots; labels of 1 to 63, at most 253 in all) or an IP literal. The
// agent controls every byte of it: a '*' would mint a wildcard leaf, a NUL or a character past
// ASCII would be written into the certificate as something else, and a huge name is no name.
// Pure; it never normalises a name into an acceptable one (the caller refuses what fails).
import { isIP } from 'node:net';

export const MAX_SERVER_NAME_LENGTH = 253;

const LABEL = /^[a-z0-9-]{1,63}$/i;

/** True for a plain LDH hostname or an IP literal (no IPv6 zone): the only names a leaf is minted for. */
export function isMintableServerName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_SERVER_NAME_LENGTH) return false;
  if (isIP(name) !== 0) return !name.includes('%');
  return name.split('.').every((label) => LABEL.test(label));
}
