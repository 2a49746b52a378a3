// A throwaway certificate authority for tests: a CA, serving/client leaves with the SANs a test
// needs, all ECDSA P-256 from @peculiar/x509 on Node's WebCrypto. Keys live only in memory and in
// the test's own temp directory; nothing is cached in the repo.
import 'reflect-metadata'; // @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect API
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as x509.CryptoProvider extends { set(c: infer C): void } ? C : never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function ipOrDns(name: string): { type: 'ip' | 'dns'; value: string } {
  return /^[0-9.]+$/.test(name) || name.includes(':') ? { type: 'ip', value: name } : { type: 'dns', value: name };
}

export class TestCA {
  readonly certPem: string;
  readonly #cert: x509.X509Certificate;
  readonly #keys: CryptoKeyPair;

  private constructor(cert: x509.X509Certificate, keys: CryptoKeyPair) {
    this.#cert = cert;
    this.#keys = keys;
    this.certPem = cert.toString('pem');
  }

  static async create(commonName = 'sluice test CA'): Promise<TestCA> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: `CN=${commonName}`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new TestCA(cert, keys);
  }

  /** A leaf for a server (SANs: DNS names or IP literals) or a client; valid for `days` days. */
  async issue(commonName: string, sans: readonly string[], opts: { days?: number; notAfter?: Date } = {}): Promise<IssuedCert> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${commonName}`,
      issuer: this.#cert.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: opts.notAfter ?? new Date(Date.now() + (opts.days ?? 7) * DAY),
      publicKey: keys.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(sans.map(ipOrDns)),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert),
      ],
    });
    return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
  }
}

/** A signing key pair (PEM) such as the API server's service-account token key. */
export async function generateSigningKey(): Promise<{ privatePem: string; publicPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return { privatePem: await keyPem(keys.privateKey), publicPem: x509.PemConverter.encode(spki, 'PUBLIC KEY') };
}
