// Follows one ConfigMap — the signed custom policy bundle in sluice's release namespace
// (policy.bundle: release) — from the API server: list and watch by name (a fieldSelector on
// metadata.name, which is what RBAC's resourceNames grants list/watch for), re-watch when the server
// ends a watch, re-list after 410 Gone or an error, with backoff (the loop is kube/list-watch.ts). Each version's archive
// (binaryData[key]) goes to the RemoteBundleInstaller, which verifies the signature before anything
// else; a deleted object or one without the archive is recorded and the last good bundle stays.
// Reads with the pod's ServiceAccount token (the sidecar's mount only), which the chart lets get,
// list and watch this one object and nothing else in that namespace. It never writes.
import type { Logger } from 'pino';
import type { KubeClient } from '../../../lib/src/approvals/kube-client.ts';
import type { SidecarConfig } from '../config/sidecar-config.ts';
import { ListWatch } from '../kube/list-watch.ts';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import { RemoteBundleInstaller, requireVerification } from './bundle-remote.ts';
import type { RemoteBundleEvents } from './bundle-remote.ts';
import { bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface ConfigMapRef {
  namespace: string;
  name: string;
  /** The binaryData key holding the bundle's .tar.gz. */
  key: string;
}

export interface ConfigMapBundleOptions {
  watchSeconds?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface ConfigMapObject {
  metadata?: { name?: string; resourceVersion?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class ConfigMapBundleWatcher {
  readonly #ref: ConfigMapRef;
  readonly #installer: RemoteBundleInstaller;
  readonly #source: string;
  readonly #loop: ListWatch<ConfigMapObject>;
  #started = false;
  #firstDone: (() => void) | undefined;
  readonly #first: Promise<void>;

  constructor(rest: KubeClient, ref: ConfigMapRef, installer: RemoteBundleInstaller, log: Logger, options: ConfigMapBundleOptions = {}) {
    this.#ref = ref;
    this.#installer = installer;
    this.#source = `configmap ${ref.namespace}/${ref.name}`;
    this.#first = new Promise((resolve) => (this.#firstDone = resolve));
    const source = this.#source;
    // By name: a fieldSelector on metadata.name is what RBAC's resourceNames grants list/watch for.
    this.#loop = new ListWatch<ConfigMapObject>(
      rest,
      { path: `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/configmaps`, fieldSelector: `metadata.name=${ref.name}`, ...options, reportFailureBeforeFirstList: true },
      {
        list: (items) => this.#take(items.find((i) => i.metadata?.name === ref.name)),
        event: (type, obj) => (obj.metadata?.name !== ref.name ? undefined : this.#take(type === 'DELETED' ? undefined : obj)),
        health: (healthy, err) => {
          if (healthy) log.info({ source }, 'policy bundle watch connected');
          else log.warn({ source, err: err?.message }, 'policy bundle watch lost contact with the API server; the bundle in service stays');
        },
        failed: async (err) => {
          // Recorded (once per distinct error) while nothing is in service: why the pod is not ready.
          if (!installer.current) await installer.absent(new BundleError('bundle.source_unreachable', `${source}: ${err.message}`));
        },
      },
    );
  }

  get source(): string {
    return this.#source;
  }

  /** True while the list/watch is connected. */
  get healthy(): boolean {
    return this.#loop.healthy;
  }

  /**
   * Starts following the object; resolves once the first read was handled (the bundle in service,
   * or its refusal recorded) or the first read failed — the caller then starts not ready.
   */
  start(): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      void this.#loop.start().then(
        () => this.#firstReadDone(),
        () => this.#firstReadDone(),
      );
    }
    return this.#first;
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#firstReadDone();
  }

  #firstReadDone(): void {
    this.#firstDone?.();
    this.#firstDone = undefined;
  }

  async #take(obj: ConfigMapObject | undefined): Promise<void> {
    if (!obj) {
      await this.#installer.absent(new BundleError('bundle.object_missing', `${this.#source}: the policy bundle object does not exist (the last good bundle, if any, stays in service)`));
      return;
    }
    const b64 = obj.binaryData?.[this.#ref.key];
    if (b64 === undefined || !BASE64.test(b64)) {
      const why = obj.data?.[this.#ref.key] !== undefined ? `holds ${this.#ref.key} as text data; create it with --from-file so the archive is binaryData` : `has no binaryData key ${this.#ref.key}`;
      await this.#installer.absent(new BundleError('bundle.object_no_archive', `${this.#source}: ${why}`));
      return;
    }
    await this.#installer.offer(Buffer.from(b64, 'base64'), { source: this.#source, version: obj.metadata?.resourceVersion ?? '' });
  }
}

/**
 * The sidecar's policy from the release namespace's bundle ConfigMap (config.policy.configMap):
 * a signing key is required, the identity is the pod's ServiceAccount (or the configured
 * kubeconfig outside a pod, as for SluicePolicy). Resolves after the first read was handled.
 */
export async function startConfigMapBundle(config: SidecarConfig, engine: PolicyEngine, events: RemoteBundleEvents, log: Logger): Promise<ConfigMapBundleWatcher> {
  const ref = config.policy.configMap!;
  const verification = requireVerification(bundleVerification(config.policy.verification), `policy.configMap (${ref.namespace}/${ref.name})`);
  const { existsSync } = await import('node:fs');
  const { KubeClient } = await import('../../../lib/src/approvals/kube-client.ts');
  const { loadKubeIdentity } = await import('../../../lib/src/approvals/kube-identity.ts');
  const c = config.policy.cluster;
  const inCluster = !c.kubeconfig && existsSync(IN_CLUSTER_TOKEN);
  if (!c.kubeconfig && !inCluster) {
    const { SchemaError } = await import('../../../api/src/index.ts');
    throw new SchemaError('invalid sidecar configuration', [`policy.configMap: no service-account token at ${IN_CLUSTER_TOKEN} and no kubeconfig: the policy bundle cannot be read`]);
  }
  const rest = new KubeClient(await loadKubeIdentity({ kubeconfig: c.kubeconfig, context: c.context, inCluster }), c.apiTimeoutMs);
  const watcher = new ConfigMapBundleWatcher(rest, ref, new RemoteBundleInstaller(engine, verification, events), log.child({ component: 'policy-bundle' }), { watchSeconds: c.watchSeconds });
  await watcher.start();
  return watcher;
}
