// Verifies an OPA bundle signature (`opa build --signing-key …` / `opa sign`): /.signatures.json
// holds exactly one JWS whose payload lists every file of the bundle with its digest. The JWS must
// verify with the configured public key and algorithm, and the bundle's files must be exactly the
// listed ones, each with the listed digest: nothing extra, nothing missing. Structured files
// (data.json, .manifest) are digested the way OPA does (keys sorted, Go's JSON encoding, number
// literals as written) so a bundle OPA accepts is accepted here. It never evaluates and never
// accepts a bundle it could not fully check: every doubt is a BundleError with a stable code.
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { BundleError } from './bundle-error.ts';

export const SIGNATURES_FILE = '.signatures.json';

/** Asymmetric algorithms only: a shared (HMAC) secret would let whoever verifies also sign. */
export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Digests OPA can list; the weak ones (MD5, SHA-1, truncated) are refused. */
const DIGESTS: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/** `policy.verification` in the sidecar config: the key custom bundles must be signed with. */
export const PolicyVerificationConfig = z
  .object({
    algorithm: z.enum(SIGNING_ALGORITHMS),
    /** A mounted file with the PEM public key (read on each load, so a rotated key applies). */
    publicKeyFile: z.string().min(1).optional(),
    /** The PEM public key inline (e.g. from a Helm value). */
    publicKey: z.string().min(1).optional(),
    scope: z.string().optional(),
  })
  .strict()
  .refine((v) => (v.publicKey === undefined) !== (v.publicKeyFile === undefined), { message: 'set exactly one of publicKey and publicKeyFile' });
export type PolicyVerificationConfig = z.infer<typeof PolicyVerificationConfig>;

/** The reader's view of the setting. */
export function bundleVerification(config: PolicyVerificationConfig | undefined): BundleVerification | undefined {
  if (!config) return undefined;
  return { algorithm: config.algorithm, publicKey: publicKeySource(config), ...(config.scope !== undefined ? { scope: config.scope } : {}) };
}

export interface BundleVerification {
  algorithm: SigningAlgorithm;
  /** PEM: a public key (SPKI or PKCS#1) or a certificate. Read on every load so a rotated key applies. */
  publicKey: () => Promise<string>;
  /** Must equal the signature's `scope` claim (both empty when unset), as OPA checks it. */
  scope?: string;
}

export interface VerifiedSignature {
  keyId: string;
  algorithm: SigningAlgorithm;
  files: number;
}

const SignedFile = z.object({ name: z.string().min(1), hash: z.string().regex(/^[0-9a-fA-F]+$/), algorithm: z.string() });
const Payload = z.object({ files: z.array(SignedFile), scope: z.string().optional(), keyid: z.string().optional() });
const SignaturesDoc = z.object({ signatures: z.array(z.string()) });

/** Loads the verification key; a private key is refused (it does not belong in an agent pod). */
export async function verificationKey(v: BundleVerification): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await v.publicKey();
  } catch (err) {
    throw new BundleError('bundle.verification_key', `bundle verification key unreadable: ${(err as Error).message}`);
  }
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new BundleError('bundle.verification_key', 'bundle verification key is a private key; configure the public key only');
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new BundleError('bundle.verification_key', `bundle verification key is not a PEM public key or certificate: ${(err as Error).message}`);
  }
}

/** A public key from a file (a mounted Secret or ConfigMap) or inline PEM. */
export function publicKeySource(setting: { publicKeyFile?: string | undefined; publicKey?: string | undefined }): () => Promise<string> {
  if (setting.publicKey !== undefined) {
    const pem = setting.publicKey;
    return () => Promise.resolve(pem);
  }
  const file = setting.publicKeyFile!;
  return () => readFile(file, 'utf8');
}

/**
 * Checks the signature and every file against it. `files` maps bundle paths (no leading slash)
 * to contents, the signatures file included. Throws BundleError; returns what was verified.
 */
export async function verifyBundleFiles(files: ReadonlyMap<string, Buffer>, v: BundleVerification, source: string): Promise<VerifiedSignature> {
  const sigText = files.get(SIGNATURES_FILE);
  if (!sigText) throw new BundleError('bundle.unsigned', `${source}: bundle has no ${SIGNATURES_FILE} and a signing key is configured`);
  let tokens: string[];
  try {
    tokens = SignaturesDoc.parse(JSON.parse(sigText.toString('utf8'))).signatures;
  } catch (err) {
    throw new BundleError('bundle.signature_invalid', `${source}: ${SIGNATURES_FILE} is malformed (${(err as Error).message.split('\n')[0]})`);
  }
  if (tokens.length !== 1) {
    throw new BundleError('bundle.signature_invalid', `${source}: ${SIGNATURES_FILE} holds ${tokens.length} signatures (expected exactly one)`);
  }
  const key = await verificationKey(v);
  // jose is loaded on the first signed bundle, not at start-up: most sidecars never verify one.
  const { compactVerify } = await import('jose');
  let payloadBytes: Uint8Array;
  let keyId: string;
  try {
    const verified = await compactVerify(tokens[0]!, key, { algorithms: [v.algorithm] });
    payloadBytes = verified.payload;
    keyId = typeof verified.protectedHeader.kid === 'string' ? verified.protectedHeader.kid : '';
  } catch (err) {
    throw new BundleError('bundle.signature_invalid', `${source}: the bundle signature does not verify with the configured ${v.algorithm} key (${(err as Error).message})`);
  }
  let payload: z.infer<typeof Payload>;
  try {
    payload = Payload.parse(JSON.parse(new TextDecoder().decode(payloadBytes)));
  } catch (err) {
    throw new BundleError('bundle.signature_invalid', `${source}: the signed payload is not a file list (${(err as Error).message.split('\n')[0]})`);
  }
  if ((payload.scope ?? '') !== (v.scope ?? '')) {
    throw new BundleError('bundle.signature_invalid', `${source}: signature scope "${payload.scope ?? ''}" is not the configured "${v.scope ?? ''}"`);
  }
  if (!keyId) keyId = payload.keyid ?? '';

  const listed = new Map<string, z.infer<typeof SignedFile>>();
  for (const f of payload.files) {
    const name = f.name.replace(/^\/+/, '');
    if (listed.has(name)) throw new BundleError('bundle.signature_invalid', `${source}: ${name} is listed twice in the signature`);
    listed.set(name, f);
  }
  for (const [name, content] of files) {
    if (name === SIGNATURES_FILE) continue;
    const entry = listed.get(name);
    if (!entry) throw new BundleError('bundle.file_not_signed', `${source}: ${name} is in the bundle but not in its signature`);
    const digest = DIGESTS[entry.algorithm];
    if (!digest) throw new BundleError('bundle.signature_invalid', `${source}: ${name} is signed with digest ${entry.algorithm} (accepted: ${Object.keys(DIGESTS).join(', ')})`);
    const actual = fileDigest(name, content, digest, source);
    if (actual !== entry.hash.toLowerCase()) {
      throw new BundleError('bundle.digest_mismatch', `${source}: ${name} does not match its signed ${entry.algorithm} digest (changed after signing)`);
    }
    listed.delete(name);
  }
  if (listed.size) {
    throw new BundleError('bundle.signed_file_missing', `${source}: signed file${listed.size > 1 ? 's' : ''} missing from the bundle: ${[...listed.keys()].sort().join(', ')}`);
  }
  return { keyId, algorithm: v.algorithm, files: files.size - 1 };
}

/** Files OPA digests as parsed JSON rather than as bytes (by base name). */
function isStructured(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base === 'data.json' || base === '.manifest' || base === 'data.yaml' || base === 'data.yml' || base === 'patch.json';
}

function fileDigest(name: string, content: Buffer, digest: string, source: string): string {
  const hash = createHash(digest);
  if (!isStructured(name)) return hash.update(content).digest('hex');
  if (name.endsWith('.yaml') || name.endsWith('.yml')) {
    // OPA parses YAML into JSON values; reproducing its YAML number handling exactly is not worth
    // the risk of accepting what it would not. The WASM engine never reads data.yaml anyway.
    throw new BundleError('bundle.file_not_signed', `${source}: ${name}: YAML data files cannot be verified here; use data.json`);
  }
  let value: unknown;
  try {
    value = parseKeepingNumbers(content.toString('utf8'));
  } catch (err) {
    throw new BundleError('bundle.bad_data', `${source}: ${name} is not valid JSON (${(err as Error).message})`);
  }
  walk(value, (s) => hash.update(s, 'utf8'));
  return hash.digest('hex');
}

/** A JSON number kept as its source text, as Go's decoder does with UseNumber. */
class NumberLiteral {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

function parseKeepingNumbers(text: string): unknown {
  const reviver: Reviver = (_key, value, context) => {
    if (typeof value !== 'number') return value;
    if (context?.source === undefined) throw new Error('this runtime does not expose JSON number source text');
    return new NumberLiteral(context.source);
  };
  return JSON.parse(text, reviver);
}

/** Go's json.Encoder with SetEscapeHTML(false): JSON.stringify plus \u2028/\u2029, lone surrogates as U+FFFD. */
function goString(s: string): string {
  return JSON.stringify(s.toWellFormed()).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Go sorts map keys by their UTF-8 bytes, which differs from UTF-16 order above the BMP. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** OPA's structured digest input: {"k":v,…} with sorted keys, [v,…], primitives Go-encoded. */
function walk(v: unknown, write: (s: string) => void): void {
  if (v instanceof NumberLiteral) write(v.text);
  else if (Array.isArray(v)) {
    write('[');
    v.forEach((e, i) => {
      if (i > 0) write(',');
      walk(e, write);
    });
    write(']');
  } else if (v !== null && typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    write('{');
    Object.keys(obj)
      .sort(byUtf8)
      .forEach((k, i) => {
        if (i > 0) write(',');
        write(goString(k));
        write(':');
        walk(obj[k], write);
      });
    write('}');
  } else if (typeof v === 'string') write(goString(v));
  else write(JSON.stringify(v)); // true, false, null
}
