// Reading a pod the way both the injector and the guard need to: is it selected for injection,
// which containers are the agent's (everything but sluice's own prefix of init containers), and
// what UID/GID a container effectively runs as. Pure functions over the pod JSON.
import type { V1Container, V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_STATUS, INIT_CONTAINER, LABEL_INJECT, LABEL_INJECTED, SIDECAR_CONTAINER } from '../../api/src/index.ts';
import type { WebhookConfig } from './config.ts';

export type Selection =
  | { inject: true; reason: 'pod-label' | 'namespace-label' }
  | { inject: false; reason: 'opted-out' | 'not-selected' | 'excluded-namespace' };

const NEVER_INJECTED = new Set(['kube-system', 'kube-public', 'kube-node-lease']);

/**
 * The pod's own label decides; without one the namespace's opt-in does (the webhook configuration
 * tells which by the path it calls). `"false"` wins over the namespace unless config forbids opting out.
 */
export function selectForInjection(pod: V1Pod, namespace: string, namespaceOptedIn: boolean, config: WebhookConfig): Selection {
  if (NEVER_INJECTED.has(namespace) || namespace === config.namespace) return { inject: false, reason: 'excluded-namespace' };
  const label = pod.metadata?.labels?.[LABEL_INJECT];
  if (label === 'true') return { inject: true, reason: 'pod-label' };
  if (label === 'false' && (config.guard.allowPodOptOut || !namespaceOptedIn)) return { inject: false, reason: 'opted-out' };
  return namespaceOptedIn ? { inject: true, reason: 'namespace-label' } : { inject: false, reason: 'not-selected' };
}

/** True when sluice injected (or was meant to inject) the pod, so the guard applies to it. */
export function isSluicePod(pod: V1Pod, namespace: string, namespaceOptedIn: boolean, config: WebhookConfig): boolean {
  if (selectForInjection(pod, namespace, namespaceOptedIn, config).inject) return true;
  // The markers only sluice writes: whatever the pod's labels say now, an injected pod stays guarded.
  if (pod.metadata?.annotations?.[ANNOTATION_STATUS] !== undefined || pod.metadata?.labels?.[LABEL_INJECTED] === 'true') return true;
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.name === SIDECAR_CONTAINER || c.name === INIT_CONTAINER);
}

export interface AgentContainer {
  container: V1Container | V1EphemeralContainer;
  /** Field path of the container, e.g. spec.initContainers[2]. */
  field: string;
  list: 'containers' | 'initContainers' | 'ephemeralContainers';
  index: number;
}

/** Number of leading init containers that are sluice's own (by name, in the injected order). */
export function sluicePrefixLength(pod: V1Pod): number {
  const init = pod.spec?.initContainers ?? [];
  if (init[0]?.name !== INIT_CONTAINER) return init[0]?.name === SIDECAR_CONTAINER ? 1 : 0;
  return init[1]?.name === SIDECAR_CONTAINER ? 2 : 1;
}

/** Every container that runs the agent's code: all but sluice's leading init containers. */
export function agentContainers(pod: V1Pod): AgentContainer[] {
  const out: AgentContainer[] = [];
  const prefix = sluicePrefixLength(pod);
  (pod.spec?.initContainers ?? []).forEach((container, index) => {
    if (index >= prefix) out.push({ container, field: `spec.initContainers[${index}]`, list: 'initContainers', index });
  });
  (pod.spec?.containers ?? []).forEach((container, index) => out.push({ container, field: `spec.containers[${index}]`, list: 'containers', index }));
  (pod.spec?.ephemeralContainers ?? []).forEach((container, index) =>
    out.push({ container, field: `spec.ephemeralContainers[${index}]`, list: 'ephemeralContainers', index }),
  );
  return out;
}

export interface Effective<T> {
  value: T | undefined;
  field: string;
}

/** A container-level securityContext field, falling back to the pod-level one (as the kubelet does). */
export function effectiveSecurity<K extends 'runAsUser' | 'runAsGroup' | 'runAsNonRoot'>(pod: V1Pod, agent: AgentContainer, key: K): Effective<NonNullable<V1Container['securityContext']>[K]> {
  const own = agent.container.securityContext?.[key];
  if (own !== undefined && own !== null) return { value: own, field: `${agent.field}.securityContext.${key}` };
  return { value: pod.spec?.securityContext?.[key], field: `spec.securityContext.${key}` };
}
