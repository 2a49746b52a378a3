// Certificate mode "self" (as vault-k8s and linkerd do it): the webhook keeps its own CA and serving
// certificate in one Secret of its namespace, serves with them, and writes the CA into the caBundle
// of sluice's own webhook registrations, so the chart renders no key material and `helm template`
// is deterministic (Argo CD, Flux). The serving certificate is re-issued from the same CA near its
// expiry; the CA is rotated at two thirds of its life in two steps (the new CA joins the old one in
// caBundle, then serving certificates move to it), so no replica serves a certificate the API
// server does not trust yet. Pure parts (issuing, renewal decisions, the caBundle JSON patch) are
// plain functions; SelfCertManager is the shell that talks to the API server and the disk.
//
// It must never: take another CA than the one in the Secret once it exists (two replicas starting
// together converge through a create that fails with AlreadyExists and a re-read), write any field
// of a registration other than clientConfig.caBundle, touch a registration it was not named, or
// hand the server a certificate/key pair that does not belong together (files are swapped
// atomically through a ..data symlink, the way the kubelet updates a Secret volume).
import 'reflect-metadata'; // @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect API
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { Logger } from 'pino';
import { request } from 'undici';
import { z } from 'zod';
import type { KubeAccess } from './kube-reader.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/**
 * The field manager of every write: the caBundle fields are owned by it in managedFields, so a
 * server-side apply of the chart (Argo CD, Flux drift detection) that does not set caBundle leaves them.
 */
const FIELD_MANAGER = 'sluice-webhook';
/** Backdating absorbs clock skew between this pod and the API server. */
const BACKDATE_MS = 60 * 60 * 1000;

const objectName = z.string().min(1).max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a Kubernetes object name');

export const SelfCertConfig = z
  .object({
    /** The Secret (in the webhook's namespace) holding ca.crt, ca.key, tls.crt and tls.key. */
    secretName: objectName,
    /** Subject alternative names of the serving certificate: the Service's DNS names (IP literals become IP SANs). */
    hosts: z.array(z.string().min(1)).min(1),
    /** sluice's own registrations whose caBundle the webhook keeps set; no other is ever touched. */
    mutatingWebhookConfigurations: z.array(objectName).default([]),
    validatingWebhookConfigurations: z.array(objectName).default([]),
    caValidityDays: z.number().int().min(1).default(3650),
    validityDays: z.number().int().min(1).default(365),
    /** The serving certificate is re-issued (from the same CA) this close to its expiry. */
    renewBeforeDays: z.number().int().min(0).default(30),
    /** How often the Secret and the registrations are re-checked (a blanked caBundle is repaired within this). */
    resyncSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict()
  .refine((c) => c.renewBeforeDays < c.validityDays, { message: 'renewBeforeDays must be less than validityDays', path: ['renewBeforeDays'] })
  // A serving certificate never outlives its CA, which is rotated with a third of its life left:
  // a shorter CA would make every serving certificate "near expiry" and re-issued at each re-check.
  .refine((c) => c.caValidityDays > 3 * c.renewBeforeDays, { message: 'caValidityDays must exceed three times renewBeforeDays', path: ['caValidityDays'] });
export type SelfCertConfig = z.infer<typeof SelfCertConfig>;

export class SelfCertError extends Error {
  readonly code = 'SLUICE_WEBHOOK_SELF_CERT';
  constructor(message: string) {
    super(message);
    this.name = 'SelfCertError';
  }
}

export interface CertBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
  /** During a CA rotation: the CA before this one, still in caBundle so its serving certificates keep working. */
  previousCaCert?: string | undefined;
}

/**
 * The CA is renewed once two thirds of its lifetime have passed (as cert-manager's default
 * renewBefore): the new CA goes into caBundle next to the old one first, and serving certificates
 * move to it only once every registration trusts both.
 */
export function caRenewalDue(caCert: string, now: Date): boolean {
  const ca = new NodeX509(caCert);
  const from = new Date(ca.validFrom).getTime();
  const to = new Date(ca.validTo).getTime();
  return now.getTime() >= from + ((to - from) * 2) / 3;
}

function expired(certPem: string, now: Date): boolean {
  try {
    return new Date(new NodeX509(certPem).validTo).getTime() <= now.getTime();
  } catch {
    return true;
  }
}

/** What the registrations must trust: the CA, and during a rotation the previous one until it expires. */
export function caBundleOf(bundle: Pick<CertBundle, 'caCert' | 'previousCaCert'>, now: Date): string {
  if (!bundle.previousCaCert || expired(bundle.previousCaCert, now)) return Buffer.from(bundle.caCert).toString('base64');
  return Buffer.from(`${bundle.caCert.trim()}\n${bundle.previousCaCert.trim()}\n`).toString('base64');
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function san(name: string): { type: 'ip' | 'dns'; value: string } {
  return /^[0-9.]+$/.test(name) || name.includes(':') ? { type: 'ip', value: name } : { type: 'dns', value: name };
}

/** A new self-signed CA (ECDSA P-256) valid for `days` from `now`. */
export async function issueCA(commonName: string, days: number, now = new Date()): Promise<{ caCert: string; caKey: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { caCert: cert.toString('pem'), caKey: await keyPem(keys.privateKey) };
}

/** A serving certificate for `hosts` signed by the CA; never valid beyond the CA itself. */
export async function issueServing(ca: { caCert: string; caKey: string }, hosts: readonly string[], days: number, now = new Date()): Promise<{ cert: string; key: string }> {
  const caCert = new x509.X509Certificate(ca.caCert);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.caKey), ALG, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const notAfter = Math.min(now.getTime() + days * DAY_MS, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${hosts[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map(san)),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** Why the CA in a Secret cannot be used (undefined: it can). An unusable CA is replaced. */
export function caProblem(bundle: Partial<CertBundle>, now: Date): string | undefined {
  if (!bundle.caCert || !bundle.caKey) return 'no CA';
  let ca: NodeX509;
  try {
    ca = new NodeX509(bundle.caCert);
    if (!ca.ca) return 'ca.crt is not a CA certificate';
    if (!ca.checkPrivateKey(createPrivateKey(bundle.caKey))) return 'ca.key does not belong to ca.crt';
    // issueServing signs with ECDSA P-256 only: any other CA key (an RSA CA such as Helm's genCA,
    // copied in by hand) could never issue, and the webhook would never become ready.
    if (ca.publicKey.asymmetricKeyType !== 'ec' || ca.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return 'the CA key is not ECDSA P-256, which this webhook signs with';
  } catch (err) {
    return `CA does not load: ${(err as Error).message}`;
  }
  if (new Date(ca.validTo).getTime() <= now.getTime()) return 'the CA has expired';
  return undefined;
}


/**
 * Why the serving certificate must be re-issued from the CA (undefined: keep it). One signed by the
 * previous CA (a rotation in progress) is kept until `newCaTrusted`: every registration trusts the new CA.
 */
export function servingProblem(bundle: Partial<CertBundle>, hosts: readonly string[], renewBeforeDays: number, now: Date, newCaTrusted = true): string | undefined {
  if (!bundle.cert || !bundle.key || !bundle.caCert) return 'no serving certificate';
  let leaf: NodeX509;
  try {
    leaf = new NodeX509(bundle.cert);
    if (!leaf.checkPrivateKey(createPrivateKey(bundle.key))) return 'tls.key does not belong to tls.crt';
    if (!leaf.verify(new NodeX509(bundle.caCert).publicKey)) {
      const byPrevious = bundle.previousCaCert !== undefined && leaf.verify(new NodeX509(bundle.previousCaCert).publicKey);
      if (!byPrevious) return 'tls.crt was not signed by ca.crt';
      if (newCaTrusted) return 'tls.crt was signed by the previous CA, and every registration now trusts the new one';
    }
  } catch (err) {
    return `serving certificate does not load: ${(err as Error).message}`;
  }
  const names = (leaf.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS|IP Address):/, ''));
  if (names.length !== hosts.length || hosts.some((h) => !names.includes(h))) return `its names (${names.join(',')}) are not ${hosts.join(',')}`;
  if (new Date(leaf.validTo).getTime() - renewBeforeDays * DAY_MS <= now.getTime()) return `it expires ${new Date(leaf.validTo).toISOString()}`;
  return undefined;
}

interface WebhookEntry {
  name: string;
  clientConfig?: { caBundle?: string };
}

/**
 * JSON patch setting every webhook's clientConfig.caBundle to `caBundle` (base64), or [] when all
 * already hold it. Each write is preceded by a test of the webhook's name at that index, so a
 * registration reordered meanwhile makes the patch fail rather than land on the wrong entry.
 */
export function caBundlePatch(registration: { webhooks?: WebhookEntry[] }, caBundle: string): object[] {
  const ops: object[] = [];
  (registration.webhooks ?? []).forEach((hook, i) => {
    if (hook.clientConfig?.caBundle === caBundle) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: hook.name });
    ops.push(hook.clientConfig ? { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle } : { op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle } });
  });
  return ops;
}

function fromSecretData(data: Record<string, string> | undefined): Partial<CertBundle> {
  const get = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
  return { caCert: get('ca.crt'), caKey: get('ca.key'), cert: get('tls.crt'), key: get('tls.key'), previousCaCert: get('ca-previous.crt') };
}

function toSecretData(b: CertBundle): Record<string, string> {
  const enc = (s: string) => Buffer.from(s).toString('base64');
  return { 'ca.crt': enc(b.caCert), 'ca.key': enc(b.caKey), 'tls.crt': enc(b.cert), 'tls.key': enc(b.key), ...(b.previousCaCert ? { 'ca-previous.crt': enc(b.previousCaCert) } : {}) };
}

/**
 * Writes the serving pair into `dir` the way the kubelet fills a Secret volume: a fresh versioned
 * directory, a `..data` symlink renamed over the old one (atomic), and tls.crt/tls.key symlinks
 * through `..data`, so a reader never sees a certificate with another pair's key.
 */
export function writeServingFiles(dir: string, files: { certFile: string; keyFile: string }, pair: { cert: string; key: string }): boolean {
  try {
    if (readFileSync(join(dir, files.certFile), 'utf8') === pair.cert && readFileSync(join(dir, files.keyFile), 'utf8') === pair.key) return false;
  } catch {
    // not written yet
  }
  mkdirSync(dir, { recursive: true });
  const version = `..${Date.now()}_${process.pid}`;
  mkdirSync(join(dir, version), { mode: 0o700 });
  writeFileSync(join(dir, version, files.certFile), pair.cert);
  writeFileSync(join(dir, version, files.keyFile), pair.key, { mode: 0o600 });
  rmSync(join(dir, '..data_tmp'), { force: true });
  symlinkSync(version, join(dir, '..data_tmp'));
  let previous: string | undefined;
  try {
    previous = readlinkSync(join(dir, '..data'));
  } catch {
    // first write
  }
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const f of [files.certFile, files.keyFile]) {
    let linked = false;
    try {
      linked = lstatSync(join(dir, f)).isSymbolicLink();
    } catch {
      // missing
    }
    if (!linked) {
      rmSync(join(dir, f), { force: true });
      symlinkSync(join('..data', f), join(dir, f));
    }
  }
  for (const entry of readdirSync(dir)) if (entry.startsWith('..') && entry !== '..data' && entry !== version && entry !== previous) rmSync(join(dir, entry), { recursive: true, force: true });
  if (previous && previous !== version) rmSync(join(dir, previous), { recursive: true, force: true });
  return true;
}

interface KubeAnswer {
  status: number;
  body: Record<string, unknown>;
}

const REGISTRATION_PATHS = {
  mutating: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
  validating: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
} as const;

export type RegistrationState = 'ok' | 'patched' | 'missing';

export interface SelfCertOptions {
  config: SelfCertConfig;
  namespace: string;
  access: KubeAccess;
  /** Where the server's ServingCertReloader reads the pair. */
  tlsDir: string;
  certFile: string;
  keyFile: string;
  logger: Logger;
  timeoutMs?: number;
  now?: () => Date;
}

/** The shell: keeps the Secret, the files on disk and the registrations' caBundle in agreement. */
export class SelfCertManager {
  readonly #o: SelfCertOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #current: CertBundle | undefined;
  /** Whether every named registration holds the CA (the last time it was checked). */
  registered = false;
  /** The caBundle every registration held at the last check (undefined: not all of them). */
  #trustedBundle: string | undefined;

  constructor(options: SelfCertOptions) {
    this.#o = options;
  }

  get current(): CertBundle | undefined {
    return this.#current;
  }

  async #kube(method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, body?: unknown, contentType = 'application/json'): Promise<KubeAnswer> {
    const { access } = this.#o;
    const timeout = this.#o.timeoutMs ?? 5_000;
    let res;
    try {
      res = await request(`${access.server}${path}`, {
        method,
        dispatcher: access.dispatcher,
        headers: { authorization: `Bearer ${access.token()}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': contentType }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
    } catch (err) {
      throw new SelfCertError(`${method} ${path}: API server unreachable (${(err as Error).message})`);
    }
    const text = await res.body.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { message: text.slice(0, 300) };
    }
    return { status: res.statusCode, body: parsed };
  }

  #fail(what: string, res: KubeAnswer): never {
    throw new SelfCertError(`${what}: ${res.status} ${typeof res.body.message === 'string' ? res.body.message : ''}`);
  }

  /**
   * Gets or creates the Secret and returns the bundle it holds, re-issuing what is unusable. Two
   * replicas race safely: create fails with 409 for the loser, and an update carries the
   * resourceVersion it read, so a concurrent write makes it re-read instead of overwriting.
   */
  async ensureSecret(): Promise<CertBundle> {
    const { config, namespace, logger } = this.#o;
    const now = this.#o.now?.() ?? new Date();
    const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
    const path = `${collection}/${encodeURIComponent(config.secretName)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const got = await this.#kube('GET', path);
      if (got.status === 404) {
        const ca = await issueCA(`${config.secretName} CA`, config.caValidityDays, now);
        const bundle = { ...ca, ...(await issueServing(ca, config.hosts, config.validityDays, now)) };
        const created = await this.#kube('POST', `${collection}?fieldManager=${FIELD_MANAGER}`, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: config.secretName, namespace, labels: { 'app.kubernetes.io/name': 'sluice', 'app.kubernetes.io/component': 'webhook' } },
          type: 'Opaque',
          data: toSecretData(bundle),
        });
        if (created.status === 201) {
          logger.info({ secret: config.secretName }, 'created the webhook CA and serving certificate');
          return bundle;
        }
        if (created.status === 409) {
          logger.info({ secret: config.secretName }, 'another replica created the webhook CA first; adopting it');
          continue;
        }
        this.#fail(`creating Secret ${namespace}/${config.secretName}`, created);
      }
      if (got.status !== 200) this.#fail(`reading Secret ${namespace}/${config.secretName}`, got);
      const secret = got.body as { data?: Record<string, string>; metadata: { resourceVersion?: string } };
      const stored = fromSecretData(secret.data);
      let next: CertBundle;
      const badCa = caProblem(stored, now);
      if (badCa) {
        logger.warn({ secret: config.secretName, reason: badCa }, 'replacing the webhook CA');
        const ca = await issueCA(`${config.secretName} CA`, config.caValidityDays, now);
        next = { ...ca, ...(await issueServing(ca, config.hosts, config.validityDays, now)) };
      } else {
        let working = { ...stored } as Partial<CertBundle> & { caCert: string; caKey: string };
        let changed = false;
        if (working.previousCaCert && expired(working.previousCaCert, now)) {
          working = { ...working, previousCaCert: undefined };
          changed = true;
        }
        if (caRenewalDue(working.caCert, now)) {
          logger.info({ secret: config.secretName }, 'rotating the webhook CA: the new CA is trusted next to the old one before serving certificates move to it');
          working = { ...working, ...(await issueCA(`${config.secretName} CA`, config.caValidityDays, now)), previousCaCert: working.caCert };
          changed = true;
        }
        const badLeaf = servingProblem(working, config.hosts, config.renewBeforeDays, now, this.#trustedBundle === caBundleOf(working, now));
        if (badLeaf) {
          logger.info({ secret: config.secretName, reason: badLeaf }, 're-issuing the serving certificate from the CA');
          working = { ...working, ...(await issueServing(working, config.hosts, config.validityDays, now)) };
          changed = true;
        }
        if (!changed) return working as CertBundle;
        next = working as CertBundle;
      }
      const updated = await this.#kube('PUT', `${path}?fieldManager=${FIELD_MANAGER}`, { ...secret, data: toSecretData(next) });
      if (updated.status === 200) return next;
      if (updated.status === 409) continue; // another replica wrote first: re-read and adopt
      this.#fail(`updating Secret ${namespace}/${config.secretName}`, updated);
    }
    throw new SelfCertError(`Secret ${namespace}/${config.secretName} kept changing under five attempts to read it`);
  }

  /** Sets caBundle on one registration; 'missing' when it does not exist (not installed yet). */
  async ensureRegistration(kind: 'mutating' | 'validating', name: string, caBundle: string): Promise<RegistrationState> {
    const path = `${REGISTRATION_PATHS[kind]}/${encodeURIComponent(name)}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const got = await this.#kube('GET', path);
      if (got.status === 404) return 'missing';
      if (got.status !== 200) this.#fail(`reading ${kind} webhook configuration ${name}`, got);
      const ops = caBundlePatch(got.body, caBundle);
      if (ops.length === 0) return 'ok';
      const patched = await this.#kube('PATCH', `${path}?fieldManager=${FIELD_MANAGER}`, ops, 'application/json-patch+json');
      if (patched.status === 200) {
        this.#o.logger.info({ kind, name }, 'set the caBundle of the webhook configuration');
        return 'patched';
      }
      // 422: a test op failed (the registration changed between read and patch): read again.
      if (patched.status !== 422 && patched.status !== 409) this.#fail(`patching ${kind} webhook configuration ${name}`, patched);
    }
    throw new SelfCertError(`${kind} webhook configuration ${name} kept changing under three attempts to patch it`);
  }

  /** One pass: Secret → files on disk → every named registration. True when all registrations hold the CA. */
  async sync(): Promise<boolean> {
    const run = this.#running.then(async () => {
      const { config, logger } = this.#o;
      const bundle = await this.ensureSecret();
      this.#current = bundle;
      if (writeServingFiles(this.#o.tlsDir, this.#o, bundle)) logger.info({ dir: this.#o.tlsDir }, 'wrote the serving certificate');
      const caBundle = caBundleOf(bundle, this.#o.now?.() ?? new Date());
      const missing: string[] = [];
      for (const [kind, names] of [['mutating', config.mutatingWebhookConfigurations], ['validating', config.validatingWebhookConfigurations]] as const) {
        for (const name of names) if ((await this.ensureRegistration(kind, name, caBundle)) === 'missing') missing.push(`${kind}/${name}`);
      }
      if (missing.length) logger.warn({ missing }, 'webhook configurations not found; their caBundle is set once they exist');
      this.registered = missing.length === 0;
      this.#trustedBundle = this.registered ? caBundle : undefined;
    });
    this.#running = run.catch(() => undefined);
    await run;
    return this.registered;
  }

  /**
   * Start-up: syncs until the certificate is on disk and every registration holds the CA (the
   * caller starts serving and reporting ready only then), retrying with a bounded back-off.
   */
  async start(signal?: AbortSignal): Promise<void> {
    let delay = 500;
    for (;;) {
      try {
        if (await this.sync()) break;
      } catch (err) {
        this.#o.logger.warn({ code: (err as SelfCertError).code, err: (err as Error).message }, 'self-managed certificate not ready; retrying');
      }
      if (signal?.aborted) throw new SelfCertError('stopped before the certificate was ready');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
    this.#timer = setInterval(() => {
      this.sync().catch((err: unknown) => this.#o.logger.warn({ code: (err as SelfCertError).code, err: (err as Error).message }, 'self-managed certificate re-check failed; keeping what is served'));
    }, this.#o.config.resyncSeconds * 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
