// The sidecar's policy from an OCI registry (config.policy.oci): polls the reference with the
// shared registry client (lib/src/policy/bundle-oci.ts), compares the manifest digest on each round
// and pulls the layer only when it changed; the RemoteBundleInstaller verifies the signature before
// anything is parsed. A signing key is required; the pull secret (a mounted .dockerconfigjson) and a
// private CA are read at start. It never falls back to another policy.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { SchemaError } from '../../../api/src/index.ts';
import type { SidecarConfig } from '../config/sidecar-config.ts';
import { createUpstreamAgent, upstreamSecureContext } from '../proxy/upstream.ts';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import { OciClient, dockerCredentials, parseOciReference } from '../../../lib/src/policy/bundle-oci.ts';
import { RemoteBundleInstaller, requireVerification } from './bundle-remote.ts';
import type { RemoteBundleEvents } from './bundle-remote.ts';
import { bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';

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
