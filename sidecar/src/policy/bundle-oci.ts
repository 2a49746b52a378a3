// Pulls a signed OPA bundle from an OCI registry (policy.bundle oci), the layout OPA's own OCI
// downloader reads: an image manifest whose one `application/vnd.oci.image.layer.v1.tar+gzip` layer
// is the bundle's .tar.gz. A small client over undici for exactly what that needs — the distribution
// API's manifest and blob GETs, the registry token flow (a 401 with `WWW-Authenticate: Bearer
// realm,service,scope` → a token from the realm, with the pull secret's Basic credentials when
// there is one; or Basic directly) — and careful where it matters: HTTPS only (a private CA may be
// added), every byte bounded, the manifest and the blob checked against their digests (a pinned
// `@sha256:` reference, the registry's Docker-Content-Digest, the layer descriptor), credentials
// never sent to another origin than the one that asked (a blob redirect to storage goes without
// them). The poller compares the manifest digest on each round and pulls the layer only when it
// changed; the RemoteBundleInstaller verifies the signature before anything is parsed. It never
// writes to the registry and never falls back to another policy.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { SchemaError } from '../../../api/src/index.ts';
import type { SidecarConfig } from '../config/sidecar-config.ts';
import { createUpstreamAgent, upstreamSecureContext } from '../proxy/upstream.ts';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import { RemoteBundleInstaller, requireVerification } from './bundle-remote.ts';
import type { RemoteBundleEvents } from './bundle-remote.ts';
import { bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** The layer OPA's OCI downloader takes as the bundle. */
export const BUNDLE_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_BLOB_BYTES = 64 * 1024 * 1024;
const MAX_TOKEN_BYTES = 64 * 1024;
const MAX_REDIRECTS = 3;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface OciReference {
  /** host[:port] of the registry (docker.io means registry-1.docker.io). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** `registry.example.com[:port]/path/name[:tag][@sha256:…]`; the registry host is required. */
export function parseOciReference(ref: string): OciReference {
  const bad = (why: string) => new SchemaError('invalid sidecar configuration', [`policy.oci.reference: "${ref}" ${why}`]);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('has a digest that is not sha256:<64 hex>');
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad('names no registry host (registry.example.com/path/name:tag)');
  const host = rest.slice(0, slash);
  if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?(:\d{1,5})?$/.test(host) || (!host.includes('.') && !host.includes(':') && host !== 'localhost')) {
    throw bad('does not start with a registry host name');
  }
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw bad('has an invalid tag');
  }
  if (!/^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/.test(path)) throw bad('has an invalid repository path');
  if (!tag && !digest) tag = 'latest';
  const registry = host === 'docker.io' ? 'registry-1.docker.io' : host;
  return { registry, repository: registry === 'registry-1.docker.io' && !path.includes('/') ? `library/${path}` : path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Basic credentials for `registry` from a kubernetes.io/dockerconfigjson (or legacy .dockercfg) document. */
export function dockerCredentials(configJson: string, registry: string): { username: string; password: string } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(configJson);
  } catch {
    throw new SchemaError('invalid sidecar configuration', ['policy.oci.pullSecretFile: not JSON (expected a .dockerconfigjson document)']);
  }
  const auths = ((doc as { auths?: unknown }).auths ?? doc) as Record<string, { auth?: string; username?: string; password?: string }>;
  if (!auths || typeof auths !== 'object') return undefined;
  const wanted = registry === 'registry-1.docker.io' ? ['registry-1.docker.io', 'docker.io', 'index.docker.io', 'https://index.docker.io/v1/'] : [registry];
  for (const [key, entry] of Object.entries(auths)) {
    const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (!wanted.includes(host) && !wanted.includes(key)) continue;
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
  }
  return undefined;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params, quoted or not). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

interface Descriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
}

export interface OciClientOptions {
  credentials?: { username: string; password: string } | undefined;
  timeoutMs?: number;
  /** Whole-request limit, body included (undici's timeouts bound idle gaps only: a byte every few seconds would never end). */
  deadlineMs?: number;
  /** Connections to the registry (the sidecar's upstream agent: its roots, its name overrides); closed by close(). */
  dispatcher: Dispatcher;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class OciClient {
  readonly ref: OciReference;
  readonly #o: OciClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #origin: string;
  #authorization: string | undefined;

  constructor(ref: OciReference, options: OciClientOptions) {
    this.ref = ref;
    this.#o = options;
    this.#origin = `https://${ref.registry}`;
    this.#dispatcher = options.dispatcher;
  }

  get source(): string {
    return `oci ${this.ref.registry}/${this.ref.repository}${this.ref.tag ? `:${this.ref.tag}` : ''}${this.ref.digest ? `@${this.ref.digest}` : ''}`;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /** The bundle manifest: its digest and the one bundle layer's descriptor. */
  async manifest(): Promise<{ digest: string; layer: { digest: string; size: number } }> {
    const path = `/v2/${this.ref.repository}/manifests/${this.ref.digest ?? this.ref.tag!}`;
    const res = await this.#get(path, { accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` }, MAX_MANIFEST_BYTES);
    const digest = sha256(res.body);
    if (this.ref.digest && digest !== this.ref.digest) {
      throw new BundleError('bundle.oci_digest_mismatch', `${this.source}: the manifest's digest is ${digest}, not the pinned one`);
    }
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new BundleError('bundle.oci_digest_mismatch', `${this.source}: the registry says the manifest is ${claimed}, its bytes are ${digest}`);
    }
    let doc: { mediaType?: unknown; layers?: unknown; manifests?: unknown };
    try {
      doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(res.body)) as typeof doc;
    } catch {
      throw new BundleError('bundle.oci_manifest', `${this.source}: the manifest is not JSON`);
    }
    if (doc.manifests !== undefined) throw new BundleError('bundle.oci_manifest', `${this.source}: an image index, not a bundle manifest (push the bundle as one manifest, as OPA expects)`);
    const type = typeof doc.mediaType === 'string' ? doc.mediaType : String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (type !== OCI_MANIFEST && type !== DOCKER_MANIFEST) throw new BundleError('bundle.oci_manifest', `${this.source}: manifest media type "${type}" is not an image manifest`);
    const layers = (Array.isArray(doc.layers) ? doc.layers : []) as Descriptor[];
    const bundles = layers.filter((l) => l.mediaType === BUNDLE_LAYER);
    if (bundles.length !== 1) {
      throw new BundleError('bundle.oci_manifest', `${this.source}: ${bundles.length} layers of type ${BUNDLE_LAYER} (expected exactly one: the bundle's .tar.gz)`);
    }
    const layer = bundles[0]!;
    if (typeof layer.digest !== 'string' || !DIGEST.test(layer.digest) || typeof layer.size !== 'number' || !Number.isSafeInteger(layer.size) || layer.size < 0) {
      throw new BundleError('bundle.oci_manifest', `${this.source}: the bundle layer has no sha256 digest or size`);
    }
    if (layer.size > MAX_BLOB_BYTES) throw new BundleError('bundle.too_large', `${this.source}: the bundle layer is ${layer.size} bytes (at most ${MAX_BLOB_BYTES})`);
    return { digest, layer: { digest: layer.digest, size: layer.size } };
  }

  /** The layer's bytes, exactly its size and its digest. */
  async blob(layer: { digest: string; size: number }): Promise<Uint8Array> {
    const res = await this.#get(`/v2/${this.ref.repository}/blobs/${layer.digest}`, {}, layer.size);
    if (res.body.length !== layer.size || sha256(res.body) !== layer.digest) {
      throw new BundleError('bundle.oci_digest_mismatch', `${this.source}: the bundle layer's bytes do not match its descriptor (${layer.digest}, ${layer.size} bytes)`);
    }
    return res.body;
  }

  /** GET with the token flow and redirects; 2xx bodies only, at most `limit` bytes. */
  async #get(path: string, headers: Record<string, string>, limit: number): Promise<{ body: Uint8Array; headers: Record<string, string | string[] | undefined> }> {
    let url = new URL(path, this.#origin);
    let authorized = false;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      // Credentials only to the registry's own origin: a redirect to blob storage goes without them.
      const sameOrigin = url.origin === this.#origin;
      const res = await this.#send(url, { ...headers, ...(sameOrigin && this.#authorization ? { authorization: this.#authorization } : {}) });
      if (res.statusCode === 401 && sameOrigin && !authorized) {
        await res.body.dump();
        await this.#authorize(String(res.headers['www-authenticate'] ?? ''));
        authorized = true;
        hop--;
        continue;
      }
      if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
        await res.body.dump();
        const location = res.headers.location;
        if (typeof location !== 'string') break;
        url = new URL(location, url);
        if (url.protocol !== 'https:') throw new BundleError('bundle.source_unreachable', `${this.source}: redirected to ${url.protocol}//${url.host}, not HTTPS`);
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = (await readLimited(res.body, 2048, true)).toString('utf8').replace(/\s+/g, ' ').slice(0, 200);
        throw new BundleError('bundle.source_unreachable', `${this.source}: GET ${url.pathname} answered ${res.statusCode}${text ? ` (${text})` : ''}`);
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > limit) {
        await res.body.dump();
        throw new BundleError('bundle.too_large', `${this.source}: ${url.pathname} is ${declared} bytes (at most ${limit})`);
      }
      return { body: await readLimited(res.body, limit, false, this.source), headers: res.headers };
    }
    throw new BundleError('bundle.source_unreachable', `${this.source}: too many redirects for ${path}`);
  }

  async #send(url: URL, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    try {
      // undici's request() follows no redirect by itself: #get handles them, dropping credentials off-origin.
      const timeout = this.#o.timeoutMs ?? 10_000;
      // The signal also ends the body's read (readLimited), so a trickling registry fails the round instead of holding it.
      const signal = AbortSignal.timeout(this.#o.deadlineMs ?? Math.max(60_000, timeout * 6));
      return await request(url, { method: 'GET', dispatcher: this.#dispatcher, headers, headersTimeout: timeout, bodyTimeout: timeout, signal });
    } catch (err) {
      const e = err as { code?: string; cause?: { code?: string }; message?: string };
      throw new BundleError('bundle.source_unreachable', `${this.source}: ${url.host} unreachable (${e.cause?.code ?? e.code ?? e.message ?? 'error'})`);
    }
  }

  /** Answers a registry's 401: Basic with the pull secret, or a Bearer token from the challenge's realm. */
  async #authorize(header: string): Promise<void> {
    const challenge = parseChallenge(header);
    const creds = this.#o.credentials;
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    if (challenge?.scheme === 'basic') {
      if (!basic) throw new BundleError('bundle.source_unreachable', `${this.source}: the registry wants credentials and no pull secret is configured`);
      this.#authorization = basic;
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw new BundleError('bundle.source_unreachable', `${this.source}: 401 without a Bearer or Basic challenge`);
    }
    const realm = new URL(challenge.params.realm);
    // The pull secret goes only over HTTPS, to the realm the registry itself named.
    if (realm.protocol !== 'https:') throw new BundleError('bundle.source_unreachable', `${this.source}: token realm ${realm.origin} is not HTTPS`);
    realm.searchParams.set('scope', challenge.params.scope ?? `repository:${this.ref.repository}:pull`);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    const res = await this.#send(realm, { accept: 'application/json', ...(basic ? { authorization: basic } : {}) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new BundleError('bundle.source_unreachable', `${this.source}: the token service ${realm.host} answered ${res.statusCode}${creds ? ' (check the pull secret)' : ''}`);
    }
    let token: unknown;
    try {
      const doc = JSON.parse((await readLimited(res.body, MAX_TOKEN_BYTES, false, this.source)).toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = doc.token ?? doc.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || !token || /[\r\n]/.test(token)) throw new BundleError('bundle.source_unreachable', `${this.source}: the token service gave no token`);
    this.#authorization = `Bearer ${token}`;
  }
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number, truncate: boolean, source = ''): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        if (truncate) {
          chunks.push(chunk.subarray(0, chunk.length - (size - limit)));
          body.destroy();
          break;
        }
        body.destroy();
        throw new BundleError('bundle.too_large', `${source}: more than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof BundleError) throw err;
    body.destroy();
    throw new BundleError('bundle.source_unreachable', `${source}: reading the answer failed (${(err as Error).name}: ${(err as Error).message})`);
  }
  return Buffer.concat(chunks);
}

export interface OciBundleOptions {
  pollIntervalMs: number;
  minBackoffMs?: number;
}

/** Polls the reference; a new manifest digest → the layer pulled, checked and offered. */
export class OciBundlePoller {
  readonly #client: OciClient;
  readonly #installer: RemoteBundleInstaller;
  readonly #log: Logger;
  readonly #o: Required<OciBundleOptions>;
  #lastManifest = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;
  #failures = 0;

  constructor(client: OciClient, installer: RemoteBundleInstaller, log: Logger, options: OciBundleOptions) {
    this.#client = client;
    this.#installer = installer;
    this.#log = log;
    this.#o = { minBackoffMs: 1000, ...options };
  }

  get source(): string {
    return this.#client.source;
  }

  /** Pulls once (resolving when handled: in service, refused or unreachable), then polls. */
  async start(): Promise<void> {
    await this.poll();
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    await this.#client.close();
  }

  #schedule(): void {
    if (this.#stopped) return;
    // After failures: back off from minBackoffMs, never beyond the poll interval.
    const delay = this.#failures ? Math.min(this.#o.minBackoffMs * 2 ** (this.#failures - 1), this.#o.pollIntervalMs) : this.#o.pollIntervalMs;
    this.#timer = setTimeout(() => void this.poll().finally(() => this.#schedule()), delay);
    this.#timer.unref();
  }

  /** One round; concurrent calls share it. */
  poll(): Promise<void> {
    this.#running ??= this.#round().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #round(): Promise<void> {
    try {
      const manifest = await this.#client.manifest();
      if (manifest.digest !== this.#lastManifest) {
        const bytes = await this.#client.blob(manifest.layer);
        await this.#installer.offer(bytes, { source: this.#client.source, version: manifest.digest });
        this.#lastManifest = manifest.digest;
      }
      this.#failures = 0;
    } catch (err) {
      this.#failures++;
      const error = err instanceof BundleError ? err : new BundleError('bundle.source_unreachable', `${this.#client.source}: ${String(err)}`);
      this.#log.warn({ code: error.code, err: error.message, source: this.#client.source }, 'policy bundle pull failed; the bundle in service stays');
      await this.#installer.absent(error);
    }
  }
}

/**
 * The sidecar's policy from an OCI registry (config.policy.oci): a signing key is required; the
 * pull secret (a mounted .dockerconfigjson) and a private CA are read at start.
 */
export async function startOciBundle(config: SidecarConfig, engine: PolicyEngine, events: RemoteBundleEvents, log: Logger): Promise<OciBundlePoller> {
  const oci = config.policy.oci!;
  const ref = parseOciReference(oci.reference);
  const verification = requireVerification(bundleVerification(config.policy.verification), `policy.oci (${oci.reference})`);
  let secret: string | undefined;
  if (oci.pullSecretFile) {
    try {
      secret = await readFile(oci.pullSecretFile, 'utf8');
    } catch (err) {
      throw new SchemaError('invalid sidecar configuration', [`policy.oci.pullSecretFile: ${(err as Error).message}`]);
    }
  }
  const credentials = secret === undefined ? undefined : dockerCredentials(secret, ref.registry);
  if (secret !== undefined && !credentials) throw new SchemaError('invalid sidecar configuration', [`policy.oci.pullSecretFile: no credentials for ${ref.registry} in ${oci.pullSecretFile}`]);
  // The sidecar's own upstream agent (system roots, upstream.extraRootsFiles, upstream.resolve), plus the registry's CA.
  const roots = [...config.upstream.extraRootsFiles, ...(oci.caFile ? [oci.caFile] : [])];
  let dispatcher: Dispatcher;
  try {
    dispatcher = createUpstreamAgent({ ...config.upstream, extraRootsFiles: roots }, upstreamSecureContext(roots));
  } catch (err) {
    throw new SchemaError('invalid sidecar configuration', [`policy.oci.caFile: ${(err as Error).message}`]);
  }
  const client = new OciClient(ref, { credentials, timeoutMs: config.policy.cluster.apiTimeoutMs, dispatcher });
  const poller = new OciBundlePoller(client, new RemoteBundleInstaller(engine, verification, events), log.child({ component: 'policy-bundle' }), { pollIntervalMs: oci.pollIntervalMs });
  await poller.start();
  return poller;
}
