// Bearer tokens and kubeconfigs for test identities on the harness's API server: a TokenRequest
// token for a ServiceAccount (bound to a pod when asked, as the kubelet's projected volume holds it)
// and a kubeconfig that authenticates with it. One place for what the approvals, webhook and
// self-certificate suites each need.
import { stringify as toYaml } from 'yaml';
import type { KubeCluster } from './cluster.ts';

/**
 * A TokenRequest token for a ServiceAccount, bound to a pod when `pod` is given (what the kubelet's
 * projected volume holds; the API server then adds the pod's name and uid to userInfo.extra).
 */
export async function serviceAccountToken(cluster: KubeCluster, namespace: string, serviceAccount: string, pod?: { name: string; uid: string }): Promise<string> {
  const token = await cluster.request<{ status?: { token?: string } }>('admin', 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, ...(pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } } : {}) },
  });
  const value = token.body.status?.token;
  if (token.status !== 201 || !value) throw new Error(`TokenRequest for ${namespace}/${serviceAccount}: ${token.status} ${JSON.stringify(token.body)}`);
  return value;
}

/** A kubeconfig (YAML text) authenticating with a bearer token, in `namespace` when given. */
export function tokenKubeconfig(cluster: KubeCluster, token: string, namespace?: string): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority-data': Buffer.from(cluster.ca.certPem).toString('base64') } }],
    users: [{ name: 'e2e-token', user: { token } }],
    contexts: [{ name: 'e2e-token', context: { cluster: 'e2e', user: 'e2e-token', ...(namespace ? { namespace } : {}) } }],
    'current-context': 'e2e-token',
  });
}
