// The webhook configuration of both benchmark peers and of the runner's pure-function rows, in one
// place so the runner can build the review bodies with the very config the servers answer with:
// the /validate body is the plain pod after sluice's own patch under it, so the guard walks its full
// comparison and allows, as it does for every pod the injector made (a pod injected under another
// config would be refused at its first differing field and measure the short deny path instead).
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import type { WebhookConfig } from '../../webhook/src/config.ts';
import type { UserInfo } from '../../webhook/src/creator.ts';
import { planInjection } from '../../webhook/src/inject.ts';

export function benchConfig(tlsDir = '/nonexistent'): WebhookConfig {
  return parseWebhookConfig({
    sidecar: { image: 'ghcr.io/sluice-dev/sluice:bench', tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }] },
    guard: { staticCredentialSecrets: ['aws-static-keys'] },
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tlsDir },
  });
}

/** The pod as the API server stores it after sluice's patch (no other webhook, no defaulting after). */
export function injectedPod(pod: V1Pod, namespace: string, user: UserInfo, config: WebhookConfig): V1Pod {
  const plan = planInjection(pod, { namespace, namespaceOptedIn: false, userInfo: user }, config);
  if (plan.kind !== 'patch' || !plan.patch.length) throw new Error(`the bench pod is not injected (${plan.kind})`);
  return fastJsonPatch.applyPatch(structuredClone(pod), structuredClone(plan.patch) as fastJsonPatch.Operation[], true, false).newDocument;
}
