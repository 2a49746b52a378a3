// The Kubernetes REST client for callers holding a @kubernetes/client-node KubeConfig — `kubectl
// sluice` (kubectl's loading rules, contexts, exec plugins, impersonation) and the tests: the
// KubeConfig authenticates each call of a KubeClient (kube-client.ts), which sends it with undici
// and turns failures into ApprovalApiErrors. The sidecar does not import this module: it reads its
// identity with kube-identity.ts, which loads client-node only for a kubeconfig that needs it.
// It never logs a token and never retries on its own; callers decide.
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { ApprovalApiError } from './errors.ts';
import { KubeClient } from './kube-client.ts';
import type { KubeIdentity } from './kube-client.ts';
import type { KubeSource } from './kube-identity.ts';

export type { CallOptions, KubeIdentity, WatchEvent, WatchHandle } from './kube-client.ts';
export type { KubeSource } from './kube-identity.ts';
export { KubeClient } from './kube-client.ts';

/** Loads a KubeConfig the way kubectl does (KUBECONFIG, ~/.kube/config) or from the pod. */
export function loadKubeConfig(source: KubeSource): KubeConfig {
  const kc = new KubeConfig();
  if (source.kubeconfig) {
    const files = source.kubeconfig.split(':').filter(Boolean);
    kc.loadFromFile(files[0]!);
    for (const f of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(f);
      kc.mergeConfig(more, true);
    }
  } else if (source.inCluster) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (source.context) {
    if (!kc.getContextObject(source.context)) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', `context "${source.context}" is not in the kubeconfig`);
    kc.setCurrentContext(source.context);
  }
  if (!kc.getCurrentCluster()) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'the kubeconfig has no current cluster');
  return kc;
}

/** The context's namespace, or "default" (what kubectl uses without -n). */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}

/**
 * A KubeConfig as a KubeIdentity: every call asks the KubeConfig to authenticate it (late bound,
 * so the CLI's impersonation wrapper and refreshed exec credentials apply).
 */
export function kubeConfigIdentity(kc: KubeConfig): KubeIdentity {
  return {
    server: kc.getCurrentCluster()!.server,
    get user() {
      return kc.getCurrentUser()?.name;
    },
    get namespace() {
      return kc.getContextObject(kc.getCurrentContext())?.namespace;
    },
    async authenticate(url, method) {
      const ctx = new RequestContext(url.toString(), HttpMethod[method as keyof typeof HttpMethod]);
      await kc.applySecurityAuthentication(ctx);
      return { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher() };
    },
  };
}

/** A KubeClient over a client-node KubeConfig (kept as `kc` for the CLI's raw calls). */
export class KubeRest extends KubeClient {
  readonly kc: KubeConfig;

  constructor(kc: KubeConfig, timeoutMs = 10_000) {
    super(kubeConfigIdentity(kc), timeoutMs);
    this.kc = kc;
  }
}
