// Mints a leaf certificate per destination host, signed by the pod CA, and caches the resulting
// TLS SecureContext (bounded LRU). Concurrent first requests for one host share one minting.
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { ext, KEY_USAGE, OID, distinguishedName, signCertificate } from './certificate.ts';
import { randomSerial } from './pod-ca.ts';
import type { PodCa } from './pod-ca.ts';
import type { Certificate } from './certificate.ts';
import { isMintableServerName } from './server-name.ts';

const LEAF_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

/** An IP address as the 4 or 16 bytes a subjectAltName iPAddress holds. */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and an embedded dotted quad, then 8 groups of 16 bits.
  let text = ip.split('%')[0]!;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = quad[1]!.split('.').map(Number);
    text = `${text.slice(0, -quad[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** A leaf for `host` signed by the pod CA (synchronous signing; a promise for the callers written for an async minting). */
export function mintLeafCertificate(ca: PodCa, host: string, now: Date = new Date()): Promise<Certificate> {
  try {
    return Promise.resolve(signLeaf(ca, host, now));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function signLeaf(ca: PodCa, host: string, now: Date): Certificate {
  // Every path that mints comes through here: a name that is not a hostname or an IP literal
  // (a wildcard, a NUL, non-ASCII, too long) never gets a certificate.
  if (!isMintableServerName(host)) throw new Error(`not a hostname or IP address: ${JSON.stringify(host.slice(0, 80))}`);
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(Math.min(now.getTime() + LEAF_VALIDITY_MS, ca.cert.notAfter.getTime()));
  return signCertificate(
    {
      serial: randomSerial(),
      issuer: ca.subject,
      subject: distinguishedName(host.slice(0, 64)),
      notBefore,
      notAfter,
      spki: ca.leafSpki,
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage([KEY_USAGE.digitalSignature]),
        ext.extKeyUsage([OID.serverAuth]),
        ext.subjectAltName(isIP(host) ? { ip: ipBytes(host) } : { dns: host }),
        ext.authorityKeyIdentifier(ca.keyId),
      ],
    },
    ca.keys.privateKey,
  );
}

export class LeafCertificateCache {
  readonly #ca: PodCa;
  readonly #capacity: number;
  readonly #contexts = new Map<string, Promise<SecureContext>>();
  minted = 0;

  constructor(ca: PodCa, capacity: number) {
    this.#ca = ca;
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#contexts.size;
  }

  /** The SecureContext for `host`; most recently used entries survive eviction. */
  contextFor(host: string): Promise<SecureContext> {
    const cached = this.#contexts.get(host);
    if (cached) {
      this.#contexts.delete(host);
      this.#contexts.set(host, cached);
      return cached;
    }
    const pending = this.#mint(host);
    this.#contexts.set(host, pending);
    pending.catch(() => this.#contexts.delete(host));
    while (this.#contexts.size > this.#capacity) {
      const oldest = this.#contexts.keys().next().value as string;
      this.#contexts.delete(oldest);
    }
    return pending;
  }

  async #mint(host: string): Promise<SecureContext> {
    const leaf = await mintLeafCertificate(this.#ca, host);
    this.minted++;
    return createSecureContext({
      cert: `${leaf.toString('pem')}\n${this.#ca.certPem}`,
      key: this.#ca.leafKeyPem,
      minVersion: 'TLSv1.2',
    });
  }
}
