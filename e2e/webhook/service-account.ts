// Acting as a ServiceAccount against the harness's API server: the agent of the issue-15 attacks
// holds a real token for its namespace's ServiceAccount (minted by TokenRequest, as a projected
// volume or a stolen sidecar token would be) and the RBAC a platform team typically gives an
// agent. Requests go out exactly like cluster.request, with that bearer token instead of a user's.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request as undiciRequest } from 'undici';
import { eventually, readManifests } from '../support/kube/admission.ts';
import type { KubeCluster, KubeResponse, RbacRule } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';

export interface ServiceAccountClient {
  /** system:serviceaccount:<namespace>:<name> */
  username: string;
  request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse<T>>;
  close(): Promise<void>;
}

/** What an agent's ServiceAccount commonly may do in its own namespace (the "typical agent RBAC"). */
export const TYPICAL_AGENT_RULES: RbacRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'update', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['pods/ephemeralcontainers', 'pods/resize'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods/exec', 'pods/portforward', 'pods/proxy', 'pods/attach'], verbs: ['create', 'get'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'list', 'update', 'patch', 'delete'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'get', 'list', 'update', 'patch', 'delete'] },
];

/** Creates the ServiceAccount (as admin), grants it `rules` in its namespace and mints a token for it. */
export async function serviceAccountClient(cluster: KubeCluster, namespace: string, name: string, rules: RbacRule[]): Promise<ServiceAccountClient> {
  const created = await cluster.request('admin', 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  if (created.status !== 201 && created.status !== 409) throw new Error(`creating ServiceAccount ${namespace}/${name}: ${created.status} ${JSON.stringify(created.body)}`);
  await cluster.grant(`serviceaccount:${name}`, namespace, `${name}-agent`, rules);
  const token = await serviceAccountToken(cluster, namespace, name);
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    request: <T>(method: string, path: string, body?: unknown, contentType = 'application/json') => cluster.requestWithToken<T>(token, method, path, body, contentType),
    // The cluster's own connection pool carries these requests; nothing of ours to close.
    close: () => Promise.resolve(),
  };
}

/**
 * The webhook's own identity as the chart gives it: ServiceAccount sluice-webhook in sluice-system
 * bound to the shipped reader ClusterRole (webhook/manifests/reader-clusterrole.yaml, get only).
 * Returns the path of a kubeconfig with its token, once RBAC lets it read pods.
 */
export async function webhookReaderKubeconfig(cluster: KubeCluster, manifests: string): Promise<string> {
  const must = async (path: string, body: unknown) => {
    const res = await cluster.request('admin', 'POST', path, body);
    if (res.status !== 201) throw new Error(`POST ${path} refused: ${res.status} ${JSON.stringify(res.body)}`);
  };
  await cluster.createNamespace('sluice-system');
  await must('/api/v1/namespaces/sluice-system/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sluice-webhook' } });
  const [role] = readManifests(join(manifests, 'reader-clusterrole.yaml'));
  await must('/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  await must('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: role!.metadata.name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role!.metadata.name },
    subjects: [{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: 'sluice-system' }],
  });
  const token = await serviceAccountToken(cluster, 'sluice-system', 'sluice-webhook');
  const path = join(cluster.dir, 'kubeconfig-sluice-webhook-reader.yaml');
  writeFileSync(path, tokenKubeconfig(cluster, token), { mode: 0o600 });
  const dispatcher = new Agent({ connect: { ca: cluster.ca.certPem } });
  try {
    await eventually('the webhook reader ClusterRole to apply', async () => {
      const res = await undiciRequest(`${cluster.server}/api/v1/namespaces/default/pods/none`, { dispatcher, headers: { authorization: `Bearer ${token}` } });
      await res.body.dump();
      return res.statusCode === 404 ? true : undefined;
    });
  } finally {
    await dispatcher.close();
  }
  return path;
}
