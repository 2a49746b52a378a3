// X.509 certificates as the pod CA issues them (ECDSA P-256 with SHA-256): the TBSCertificate is
// written as DER from plain fields and signed with node:crypto, and the parts a leaf needs from a
// CA certificate (its subject and key identifier) are read back from DER. This replaces an X.509
// library that cost ~20 MB of RSS and ~200 ms of start-up for two certificate shapes.
// It never loads a key from anywhere but its caller and never writes a certificate it could not
// sign (a key that is not EC P-256 is refused).
import { createHash, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { bitString, boolean, children, explicit, implicit, namedBits, octetString, oid, read, sequence, set, smallInteger, time, unsignedInteger, utf8String } from './der.ts';

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** KeyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** A signed certificate: its DER, its PEM, and the validity the issuer needs to clamp leaves. */
export class Certificate {
  readonly der: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  #pem: string | undefined;

  constructor(der: Buffer, notBefore: Date, notAfter: Date) {
    this.der = der;
    this.notBefore = notBefore;
    this.notAfter = notAfter;
  }

  get pem(): string {
    this.#pem ??= `-----BEGIN CERTIFICATE-----\n${this.der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
    return this.#pem;
  }

  /** The PEM text (the one format; the argument keeps callers written for PEM-or-DER APIs working). */
  toString(format: 'pem' = 'pem'): string {
    void format;
    return this.pem;
  }
}

/** A distinguished name of a common name and, optionally, an organisation (in that order). */
export function distinguishedName(commonName: string, organization?: string): Buffer {
  const rdn = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(rdn(OID.commonName, commonName), ...(organization === undefined ? [] : [rdn(OID.organization, organization)]));
}

/** An IA5String's bytes (a dNSName): printable ASCII only, never a character re-encoded as another (U+0100 as NUL). */
function ia5(text: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(text)) throw new Error(`not a printable ASCII name: ${JSON.stringify(text.slice(0, 80))}`);
  return Buffer.from(text, 'ascii');
}

export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits of a SubjectPublicKeyInfo. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, key] = children(spki, read(spki, 0));
  if (!key || key.tag !== 0x03) throw new Error('SubjectPublicKeyInfo without a public key');
  return createHash('sha1').update(spki.subarray(key.body + 1, key.end)).digest();
}

export const ext = {
  basicConstraints: (ca: boolean, pathLength?: number) => extension(OID.basicConstraints, true, ca ? sequence(boolean(true), ...(pathLength === undefined ? [] : [smallInteger(pathLength)])) : sequence()),
  keyUsage: (bits: number[]) => extension(OID.keyUsage, true, namedBits(bits)),
  extKeyUsage: (purposes: string[]) => extension(OID.extKeyUsage, false, sequence(...purposes.map(oid))),
  /** One SAN: a DNS name, or an IP address as its 4 or 16 bytes. */
  subjectAltName: (san: { dns: string } | { ip: Buffer }) => extension(OID.subjectAltName, false, sequence('dns' in san ? implicit(2, ia5(san.dns)) : implicit(7, san.ip))),
  subjectKeyIdentifier: (id: Buffer) => extension(OID.subjectKeyIdentifier, false, octetString(id)),
  authorityKeyIdentifier: (id: Buffer) => extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, id))),
};

export interface CertificateFields {
  /** positive serial number bytes (at most 20) */
  serial: Uint8Array;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** the subject's public key, as a DER SubjectPublicKeyInfo */
  spki: Buffer;
  extensions: Buffer[];
}

/** Refuses a signing key this module cannot sign with as ecdsa-with-SHA256 on P-256. */
export function assertP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${what} is not an EC P-256 key (${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trim());
  }
}

/** Writes and signs a v3 certificate with `signingKey` (the issuer's P-256 private key). */
export function signCertificate(f: CertificateFields, signingKey: KeyObject): Certificate {
  assertP256(signingKey, 'the signing key');
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(f.serial),
    ECDSA_WITH_SHA256,
    f.issuer,
    sequence(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    explicit(3, sequence(...f.extensions)),
  );
  const signature = sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  return new Certificate(sequence(tbs, ECDSA_WITH_SHA256, bitString(signature)), f.notBefore, f.notAfter);
}

/** What a leaf needs from its issuer's certificate: the subject name as written, the public key, the key identifier. */
export interface IssuerParts {
  subject: Buffer;
  spki: Buffer;
  /** the certificate's subjectKeyIdentifier, else one computed from its key */
  keyId: Buffer;
}

export function issuerParts(der: Buffer): IssuerParts {
  const cert = read(der, 0);
  const [tbsElement] = children(der, cert);
  if (cert.tag !== 0x30 || !tbsElement || tbsElement.tag !== 0x30) throw new Error('not a certificate');
  const tbs = children(der, tbsElement);
  const fields = tbs[0]?.tag === 0xa0 ? tbs.slice(1) : tbs; // version is optional (v1)
  const [, , , , subject, spki, ...rest] = fields;
  if (!subject || subject.tag !== 0x30 || !spki || spki.tag !== 0x30) throw new Error('certificate without a subject or public key');
  const spkiBytes = Buffer.from(der.subarray(spki.start, spki.end));
  let keyId: Buffer | undefined;
  const extensions = rest.find((e) => e.tag === 0xa3);
  if (extensions) {
    const skiOid = oid(OID.subjectKeyIdentifier);
    const list = children(der, children(der, extensions)[0]!);
    for (const e of list) {
      const parts = children(der, e);
      if (!parts[0] || !skiOid.equals(der.subarray(parts[0].start, parts[0].end))) continue;
      const value = parts[parts.length - 1]!;
      const inner = read(der, value.body);
      if (inner.tag === 0x04) keyId = Buffer.from(der.subarray(inner.body, inner.end));
    }
  }
  return { subject: Buffer.from(der.subarray(subject.start, subject.end)), spki: spkiBytes, keyId: keyId ?? keyIdentifier(spkiBytes) };
}

/** A PEM certificate's DER (the first CERTIFICATE block). */
export function pemToDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('no PEM certificate');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}
