// Pulls a signed OPA bundle from an OCI registry (policy.bundle oci), the layout OPA's own OCI
// downloader reads: an image manifest whose one `application/vnd.oci.image.layer.v1.tar+gzip` layer
// is the bundle's .tar.gz. A small client over undici for exactly what that needs — the distribution
// API's manifest and blob GETs, the registry token flow (a 401 with `WWW-Authenticate: Bearer
// realm,service,scope` → a token from the realm, with the pull secret's Basic credentials when
// there is one; or Basic directly) — and careful where it matters: HTTPS only (a private CA may be
// added), every byte bounded, the manifest and the blob checked against their digests (a pinned
// `@sha256:` reference, the registry's Docker-Content-Digest, the layer descriptor), credentials
// never sent to another origin than the one that asked (a blob redirect to storage goes without
// them). Shared by the sidecar, which polls it (sidecar/src/policy/bundle-oci-poller.ts), and the
// CLI, which pulls once for `policy … --cluster` (cli/src/policy/cluster-oci.ts); both verify the
// signature before anything in the archive is parsed. It never writes to the registry.
import { createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { SchemaError } from '../../../api/src/index.ts';
import { BundleError } from './bundle-error.ts';

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

/** One pull: the manifest, then its one bundle layer, checked against the manifest's descriptor. */
export async function pullOciBundle(client: OciClient): Promise<{ manifestDigest: string; bytes: Uint8Array }> {
  const manifest = await client.manifest();
  return { manifestDigest: manifest.digest, bytes: await client.blob(manifest.layer) };
}

/**
 * Connections to a registry for a one-off pull (the CLI): the system roots plus `extraRootsPem`
 * (a private CA), certificates always verified. The sidecar dials with its own upstream agent
 * instead (its roots and name overrides).
 */
export function registryAgent(o: { extraRootsPem?: readonly string[]; timeoutMs?: number } = {}): Agent {
  const timeout = o.timeoutMs ?? 10_000;
  return new Agent({ connect: { ca: [...rootCertificates, ...(o.extraRootsPem ?? [])], rejectUnauthorized: true, timeout }, headersTimeout: timeout, bodyTimeout: timeout });
}
