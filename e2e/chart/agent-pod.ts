// The agent pod the chart's e2e tests hand to the webhook, and the AdmissionReview the API server
// would send for creating it (as alice, in a namespace opted in to injection).
export function agentPod(namespace: string, name: string, labels: Record<string, string> = { 'sluice.io/inject': 'true' }) {
  // An explicit non-root UID: the sluice guard requires one of agent pods (guard.uid_unset).
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { securityContext: { runAsUser: 1000, runAsNonRoot: true }, containers: [{ name: 'agent', image: 'ghcr.io/example/agent:1' }] } };
}

export function podCreateReview(namespace = 'agents', name = 'coder-0') {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'alice', uid: 'uid-alice', groups: ['developers'] },
      object: agentPod(namespace, name),
    },
  };
}
