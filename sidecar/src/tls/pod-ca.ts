// The pod's certificate authority: generated at sidecar start (the key lives only in this
// process's memory) or loaded from a mounted secret. Agents trust its certificate through the
// trust bundle the sidecar writes; nothing else in the pod ever sees the key.
import { webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { x509 } from './x509.ts';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;

export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PodCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  certPem: string;
  /** One key pair shared by every leaf: signing a leaf is cheap, generating a key is not. */
  leafKeys: CryptoKeyPair;
  leafKeyPem: string;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END PRIVATE KEY-----\n`;
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']));
}

async function withLeafKeys(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<PodCa> {
  const leafKeys = await newKeyPair();
  return { cert, keys, certPem: cert.toString('pem'), leafKeys, leafKeyPem: await privateKeyPem(leafKeys.privateKey) };
}

export async function generatePodCa(subject: string, now: Date = new Date(), validDays = 365): Promise<PodCa> {
  const keys = await newKeyPair();
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + validDays * 24 * 60 * 60 * 1000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${subject.replace(/[,=+<>#;"\\]/g, '_')}, O=sluice`,
    notBefore,
    notAfter,
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return withLeafKeys(cert, keys);
}

/** Loads a CA from a mounted secret directory holding tls.crt and tls.key (PKCS#8 EC P-256). */
export async function loadPodCa(dir: string): Promise<PodCa> {
  const certPem = await readFile(join(dir, 'tls.crt'), 'utf8');
  const keyPem = await readFile(join(dir, 'tls.key'), 'utf8');
  const cert = new x509.X509Certificate(certPem);
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
  const publicKey = (await cert.publicKey.export(EC_ALG, ['verify'])) as unknown as CryptoKey;
  return withLeafKeys(cert, { privateKey, publicKey });
}
