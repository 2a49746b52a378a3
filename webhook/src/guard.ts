// The guard: pod (CREATE/UPDATE), pods/ephemeralcontainers and pods/exec|attach → violations.
// It holds for pods created around the injector, so it re-derives everything from the object under
// review and the config; it never reads the cluster. On UPDATE it refuses only what the update
// introduces, so a kill-switch annotation on an older pod is never blocked by a newer rule.
import type { V1Container, V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_CREATOR } from '../../api/src/index.ts';
import type { WebhookConfig } from './config.ts';
import { creatorStamp } from './creator.ts';
import type { UserInfo } from './creator.ts';
import { agentContainers, effectiveSecurity, isSluicePod, sluicePrefixLength } from './pod-model.ts';
import type { AgentContainer } from './pod-model.ts';
import { RESERVED_CONTAINERS, isSluiceVolume, renderInjection } from './render.ts';
import { missingSidecarViolations, modifiedSidecarViolations, reservedNameViolations } from './sidecar-integrity.ts';
import { sameSpec } from './spec-equality.ts';
import { violation, violationKey } from './violations.ts';
import type { Violation } from './violations.ts';

export interface GuardContext {
  namespace: string;
  namespaceOptedIn: boolean;
  userInfo: UserInfo;
}

const normaliseCapability = (c: string) => c.toUpperCase().replace(/^CAP_/, '');

/** What the guard derives from a (frozen) config once, not per review. */
interface GuardPlan {
  /** Static-credential Secrets: the configured ones plus every Secret the sidecar mounts. */
  staticSecrets: readonly string[];
  forbiddenCapabilities: ReadonlySet<string>;
}
const plans = new WeakMap<WebhookConfig, GuardPlan>();
function planFor(config: WebhookConfig): GuardPlan {
  let plan = plans.get(config);
  if (!plan) {
    plan = {
      staticSecrets: [...config.guard.staticCredentialSecrets, ...config.sidecar.mounts.flatMap((m) => ('secret' in m ? [m.secret] : []))],
      forbiddenCapabilities: new Set(config.guard.forbiddenCapabilities.map(normaliseCapability)),
    };
    plans.set(config, plan);
  }
  return plan;
}

function secretListed(name: string | undefined, listed: readonly string[]): boolean {
  if (!name) return false;
  return listed.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

function hostNamespaceViolations(pod: V1Pod): Violation[] {
  const spec = pod.spec;
  const out: Violation[] = [];
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec?.[key]) out.push(violation('guard.host_namespace', `spec.${key}`, `${key} would let the agent act outside the pod's intercepted namespaces`));
  }
  if (spec?.shareProcessNamespace) {
    out.push(violation('guard.share_process_namespace', 'spec.shareProcessNamespace', "a shared process namespace would let the agent read the sidecar's memory and files"));
  }
  return out;
}

function podIdentityViolations(pod: V1Pod, config: WebhookConfig): Violation[] {
  const uid = config.sidecar.proxyUID;
  const sc = pod.spec?.securityContext;
  const out: Violation[] = [];
  if (sc?.fsGroup === uid) out.push(violation('guard.proxy_gid', 'spec.securityContext.fsGroup', `group ${uid} is the sidecar's; the interception rules exempt it`));
  (sc?.supplementalGroups ?? []).forEach((g, i) => {
    if (g === uid) out.push(violation('guard.proxy_gid', `spec.securityContext.supplementalGroups[${i}]`, `group ${uid} is the sidecar's; the interception rules exempt it`));
  });
  return out;
}

function volumeViolations(pod: V1Pod, config: WebhookConfig): Violation[] {
  const out: Violation[] = [];
  const listed = planFor(config).staticSecrets;
  const settings = config.sidecar.sidecarConfigMap;
  (pod.spec?.volumes ?? []).forEach((v, i) => {
    // sluice's own volumes (a Secret mounted into the sidecar) are checked against the rendering
    // by reservedNameViolations; agents may not mount them at all.
    if (isSluiceVolume(v.name)) return;
    if (v.hostPath) {
      // The node's files hold every pod's Secret volumes (the sidecar's mounts among them) and
      // its container runtime: not something an agent may reach.
      out.push(violation('guard.host_path', `spec.volumes[${i}].hostPath`, `a hostPath volume (${v.hostPath.path}) reaches the node's files, including the sidecar's mounted Secrets`));
    }
    if (v.configMap?.name === settings) {
      out.push(violation('guard.sluice_settings', `spec.volumes[${i}].configMap.name`, `ConfigMap "${settings}" holds the sidecar's settings (notification URLs among them); agents may not read it`));
    }
    if (secretListed(v.secret?.secretName, listed)) {
      out.push(violation('guard.static_credential', `spec.volumes[${i}].secret.secretName`, `Secret "${v.secret?.secretName}" holds static credentials; sluice mints short-lived ones instead`));
    }
    (v.projected?.sources ?? []).forEach((s, j) => {
      if (s.configMap?.name === settings) {
        out.push(violation('guard.sluice_settings', `spec.volumes[${i}].projected.sources[${j}].configMap.name`, `ConfigMap "${settings}" holds the sidecar's settings; agents may not read it`));
      }
      if (secretListed(s.secret?.name, listed)) {
        out.push(violation('guard.static_credential', `spec.volumes[${i}].projected.sources[${j}].secret.name`, `Secret "${s.secret?.name}" holds static credentials; sluice mints short-lived ones instead`));
      }
    });
  });
  return out;
}

function containerViolations(pod: V1Pod, agent: AgentContainer, config: WebhookConfig, tokenVolumes: ReadonlySet<string>): Violation[] {
  const out: Violation[] = [];
  const c: V1Container | V1EphemeralContainer = agent.container;
  const f = agent.field;
  const uid = config.sidecar.proxyUID;
  const who = `container "${c.name}"`;
  if (c.securityContext?.privileged) out.push(violation('guard.privileged', `${f}.securityContext.privileged`, `${who} is privileged and could rewrite the pod's interception rules`));
  const forbidden = planFor(config).forbiddenCapabilities;
  (c.securityContext?.capabilities?.add ?? []).forEach((cap, i) => {
    if (forbidden.has(normaliseCapability(cap))) {
      out.push(violation('guard.capability', `${f}.securityContext.capabilities.add[${i}]`, `${who} adds ${cap}, which could bypass or rewrite the interception rules`));
    }
  });
  const user = effectiveSecurity(pod, agent, 'runAsUser');
  if (user.value === uid) out.push(violation('guard.proxy_uid', user.field, `${who} runs as UID ${uid}, the sidecar's, which the interception rules exempt`));
  const group = effectiveSecurity(pod, agent, 'runAsGroup');
  if (group.value === uid) out.push(violation('guard.proxy_gid', group.field, `${who} runs as GID ${uid}, the sidecar's, which the interception rules exempt`));
  if (config.guard.forbidRootAgents) {
    const nonRoot = effectiveSecurity(pod, agent, 'runAsNonRoot');
    if (user.value === 0) out.push(violation('guard.root_user', user.field, `${who} runs as root, which this cluster's sluice config forbids for agents`));
    else if (user.value === undefined && nonRoot.value !== true) {
      out.push(violation('guard.root_user', nonRoot.field, `${who} may run as root (set runAsNonRoot: true or a non-zero runAsUser)`));
    }
  }
  const agentMount = renderInjection(config).agentMount.name;
  (c.volumeMounts ?? []).forEach((m, i) => {
    const mf = `${f}.volumeMounts[${i}]`;
    if (isSluiceVolume(m.name) && !(m.name === agentMount && m.readOnly === true)) {
      out.push(violation('guard.sluice_volume', `${mf}.name`, `${who} mounts "${m.name}", which belongs to the sluice sidecar (only the trust bundle, read-only, is shared)`));
    } else if (tokenVolumes.has(m.name)) {
      out.push(violation('guard.service_account_token', `${mf}.name`, `${who} mounts a service-account token ("${m.name}"); agents reach the API through the sidecar`));
    }
  });
  const listed = planFor(config).staticSecrets;
  const settings = config.sidecar.sidecarConfigMap;
  (c.env ?? []).forEach((e, i) => {
    const name = e.valueFrom?.secretKeyRef?.name;
    if (secretListed(name, listed)) out.push(violation('guard.static_credential', `${f}.env[${i}].valueFrom.secretKeyRef.name`, `${who} reads Secret "${name}", which holds static credentials`));
    if (e.valueFrom?.configMapKeyRef?.name === settings) {
      out.push(violation('guard.sluice_settings', `${f}.env[${i}].valueFrom.configMapKeyRef.name`, `${who} reads ConfigMap "${settings}", the sidecar's settings`));
    }
  });
  (c.envFrom ?? []).forEach((e, i) => {
    const name = e.secretRef?.name;
    if (secretListed(name, listed)) out.push(violation('guard.static_credential', `${f}.envFrom[${i}].secretRef.name`, `${who} reads Secret "${name}", which holds static credentials`));
    if (e.configMapRef?.name === settings) {
      out.push(violation('guard.sluice_settings', `${f}.envFrom[${i}].configMapRef.name`, `${who} reads ConfigMap "${settings}", the sidecar's settings`));
    }
  });
  const target = (c as V1EphemeralContainer).targetContainerName;
  if (agent.list === 'ephemeralContainers' && target && RESERVED_CONTAINERS.includes(target)) {
    out.push(violation('guard.ephemeral_target', `${f}.targetContainerName`, `an ephemeral container may not target "${target}", sluice's own container`));
  }
  return out;
}

/** Everything about the pod's own spec that an agent pod may not have (no sidecar checks). */
export function agentPodViolations(pod: V1Pod, config: WebhookConfig): Violation[] {
  const tokenVolumes = new Set(
    (pod.spec?.volumes ?? []).filter((v) => (v.projected?.sources ?? []).some((s) => s.serviceAccountToken !== undefined)).map((v) => v.name),
  );
  return [
    ...hostNamespaceViolations(pod),
    ...podIdentityViolations(pod, config),
    ...volumeViolations(pod, config),
    ...agentContainers(pod).flatMap((a) => containerViolations(pod, a, config, tokenVolumes)),
  ];
}

function creatorOnCreate(pod: V1Pod, user: UserInfo): Violation[] {
  const field = `metadata.annotations[${ANNOTATION_CREATOR}]`;
  const value = pod.metadata?.annotations?.[ANNOTATION_CREATOR];
  if (value === undefined) return [violation('guard.creator_missing', field, 'an injected pod must carry the creator stamp that the sluice mutating webhook writes')];
  if (value !== creatorStamp(user)) return [violation('guard.creator_forged', field, 'the creator annotation does not match the authenticated user who created the pod')];
  return [];
}

/** A pod being created: everything must hold, the sidecar must be exactly the injector's. */
export function guardPodCreate(pod: V1Pod, ctx: GuardContext, config: WebhookConfig): Violation[] {
  if (!isSluicePod(pod, ctx.namespace, ctx.namespaceOptedIn, config)) return [];
  const rendered = renderInjection(config);
  return [
    ...missingSidecarViolations(pod, rendered),
    ...modifiedSidecarViolations(pod, rendered),
    ...reservedNameViolations(pod, rendered),
    ...agentPodViolations(pod, config),
    ...creatorOnCreate(pod, ctx.userInfo),
  ];
}

/**
 * A pod update (including pods/ephemeralcontainers): sluice's containers, volumes and the creator
 * stamp must not change, and the update may not add a violation the old pod did not have.
 */
export function guardPodUpdate(oldPod: V1Pod, pod: V1Pod, ctx: GuardContext, config: WebhookConfig): Violation[] {
  if (!isSluicePod(oldPod, ctx.namespace, ctx.namespaceOptedIn, config) && !isSluicePod(pod, ctx.namespace, ctx.namespaceOptedIn, config)) return [];
  const out: Violation[] = [];
  const sluiceParts = (p: V1Pod) => ({
    init: (p.spec?.initContainers ?? []).slice(0, sluicePrefixLength(p)),
    volumes: (p.spec?.volumes ?? []).filter((v) => isSluiceVolume(v.name)),
  });
  const before = sluiceParts(oldPod);
  const after = sluiceParts(pod);
  if (!sameSpec(after.init, before.init)) {
    out.push(violation(after.init.length < before.init.length ? 'guard.sidecar_missing' : 'guard.sidecar_modified', 'spec.initContainers', "an update may not remove or change sluice's containers"));
  }
  if (!sameSpec(after.volumes, before.volumes)) out.push(violation('guard.sidecar_modified', 'spec.volumes', "an update may not remove or change sluice's volumes"));
  const oldCreator = oldPod.metadata?.annotations?.[ANNOTATION_CREATOR];
  if (pod.metadata?.annotations?.[ANNOTATION_CREATOR] !== oldCreator) {
    out.push(violation('guard.creator_changed', `metadata.annotations[${ANNOTATION_CREATOR}]`, 'the creator stamp cannot be changed or removed'));
  }
  const rendered = renderInjection(config);
  const existing = new Set([...reservedNameViolations(oldPod, rendered), ...agentPodViolations(oldPod, config)].map(violationKey));
  out.push(...[...reservedNameViolations(pod, rendered), ...agentPodViolations(pod, config)].filter((v) => !existing.has(violationKey(v))));
  return out;
}

/** pods/exec and pods/attach: never into sluice's containers (the options name the container). */
export function guardConnect(subResource: string, options: { container?: string | undefined }): Violation[] {
  const container = options.container;
  if (container && RESERVED_CONTAINERS.includes(container)) {
    return [violation('guard.exec_sidecar', `${subResource}.container`, `${subResource} into "${container}" is refused: the sidecar holds the pod's CA key and credentials`)];
  }
  return [];
}
