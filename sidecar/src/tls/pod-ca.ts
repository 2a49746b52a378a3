// The pod's certificate authority: generated at sidecar start (the key lives only in this
// process's memory) or loaded from a mounted secret. Agents trust its certificate through the
// trust bundle the sidecar writes; nothing else in the pod ever sees the key. Certificates are
// written by certificate.ts (DER + node:crypto), so start-up loads no X.509 library.
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { assertP256, Certificate, distinguishedName, ext, issuerParts, KEY_USAGE, keyIdentifier, pemToDer, signCertificate } from './certificate.ts';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface PodCa {
  cert: Certificate;
  keys: KeyPair;
  certPem: string;
  /** the CA's subject exactly as its certificate writes it (a leaf's issuer must match it byte for byte) */
  subject: Buffer;
  /** the CA's key identifier (a leaf's authorityKeyIdentifier) */
  keyId: Buffer;
  /** One key pair shared by every leaf: signing a leaf is cheap, generating a key is not. */
  leafKeys: KeyPair;
  leafKeyPem: string;
  /** the leaves' public key as DER SubjectPublicKeyInfo */
  leafSpki: Buffer;
}

/** 16 random bytes with the top bit clear: a positive serial number. */
export function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes;
}

const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

const generateEcKeyPair = promisify(generateKeyPair);

/** A P-256 key pair, generated off the event loop. */
function newKeyPair(): Promise<KeyPair> {
  return generateEcKeyPair('ec', { namedCurve: 'P-256' });
}

async function withLeafKeys(ca: Omit<PodCa, 'leafKeys' | 'leafKeyPem' | 'leafSpki'>): Promise<PodCa> {
  const leafKeys = await newKeyPair();
  return { ...ca, leafKeys, leafKeyPem: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, leafSpki: spkiOf(leafKeys.publicKey) };
}

export async function generatePodCa(subject: string, now: Date = new Date(), validDays = 365): Promise<PodCa> {
  const keys = await newKeyPair();
  const spki = spkiOf(keys.publicKey);
  const keyId = keyIdentifier(spki);
  const name = distinguishedName(subject.replace(/[,=+<>#;"\\]/g, '_'), 'sluice');
  const cert = signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(now.getTime() - 60 * 60 * 1000),
      notAfter: new Date(now.getTime() + validDays * 24 * 60 * 60 * 1000),
      spki,
      extensions: [ext.basicConstraints(true, 0), ext.keyUsage([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]), ext.subjectKeyIdentifier(keyId)],
    },
    keys.privateKey,
  );
  return withLeafKeys({ cert, keys, certPem: cert.pem, subject: name, keyId });
}

/**
 * Loads a CA from a mounted secret directory holding tls.crt and tls.key (an EC P-256 private
 * key). Refuses a key that is not P-256 or not the certificate's own.
 */
export async function loadPodCa(dir: string): Promise<PodCa> {
  const certPem = await readFile(join(dir, 'tls.crt'), 'utf8');
  const keyPem = await readFile(join(dir, 'tls.key'), 'utf8');
  const der = pemToDer(certPem);
  const parsed = new X509Certificate(der);
  const privateKey = createPrivateKey(keyPem);
  assertP256(privateKey, `${join(dir, 'tls.key')}`);
  const publicKey = createPublicKey(privateKey);
  const parts = issuerParts(der);
  if (!spkiOf(publicKey).equals(parts.spki)) throw new Error(`${join(dir, 'tls.key')} is not the key of ${join(dir, 'tls.crt')}`);
  const cert = new Certificate(der, new Date(parsed.validFrom), new Date(parsed.validTo));
  return withLeafKeys({ cert, keys: { privateKey, publicKey }, certPem, subject: parts.subject, keyId: parts.keyId });
}
