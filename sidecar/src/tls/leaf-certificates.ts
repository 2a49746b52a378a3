// Mints a leaf certificate per destination host, signed by the pod CA, and caches the resulting
// TLS SecureContext (bounded LRU). Concurrent first requests for one host share one minting.
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { webcrypto } from 'node:crypto';
import { x509 } from './x509.ts';
import { EC_ALG } from './pod-ca.ts';
import type { PodCa } from './pod-ca.ts';

const LEAF_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

export async function mintLeafCertificate(ca: PodCa, host: string, now: Date = new Date()): Promise<x509.X509Certificate> {
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(Math.min(now.getTime() + LEAF_VALIDITY_MS, ca.cert.notAfter.getTime()));
  const san = isIP(host) ? { type: 'ip' as const, value: host } : { type: 'dns' as const, value: host };
  const serial = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)));
  serial[0] = serial[0]! & 0x7f;
  return x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: `CN=${host.slice(0, 64)}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: EC_ALG,
    publicKey: ca.leafKeys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([san], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
    ],
  });
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
