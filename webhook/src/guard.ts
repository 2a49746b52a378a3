// The guard: pod (CREATE/UPDATE), pods/ephemeralcontainers, pods/resize and the CONNECT
// subresources (exec, attach, portforward, proxy) → violations. It holds for pods created around
// the injector, so it re-derives everything from the object under review and the config; it never
// reads the cluster. Once a pod carries sluice's injection markers every later change is judged,
// whatever its labels say. On UPDATE it refuses only what the update introduces, so engaging the
// kill switch on an older pod is never blocked by a newer rule.
import type { V1Container, V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_CREATOR, ANNOTATION_KILL, ANNOTATION_STATUS, LABEL_INJECT, LABEL_INJECTED } from '../../api/src/index.ts';
import { approverGroupsFor } from './approvals/config.ts';
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
  /** Whom a pod being created is stamped with when not the caller (a controller's pod: its owner's creator). */
  creator?: UserInfo;
}

/**
 * A capability as the runtime reads it: surrounding whitespace, case and a `CAP_` prefix do not
 * matter (containerd and CRI-O add the prefix and upper-case), so neither may they here.
 */
export const normaliseCapability = (c: string) => c.trim().toUpperCase().replace(/^CAP_/, '');

/** Capabilities that let a process change its UID or GID, and so reach the sidecar's exemption. */
const UID_CAPABILITIES = new Set(['SETUID', 'SETGID', 'ALL']);

/**
 * Secret names the (pre-1.24) token controller generated for legacy service-account token Secrets:
 * `<serviceaccount>-token-<5 characters from its alphabet>`. The webhook cannot see a referenced
 * Secret's type (it reads no Secrets: that would need read access to every Secret of the cluster),
 * so it refuses these names; the `sluice-token-secret-guard` policy refuses creating new ones.
 */
const LEGACY_TOKEN_NAME = /-token-[bcdfghjklmnpqrstvwxz2456789]{5}$/;

/** Is the user one of the approvers of the namespace (the same groups that may decide ApprovalRequests)? */
export function isApprover(user: UserInfo, namespace: string, config: WebhookConfig): boolean {
  const groups = new Set(user.groups ?? []);
  return approverGroupsFor(config.approvals, namespace).some((g) => groups.has(g));
}

/** Whether sluice injected the pod: it carries a marker only the injector writes and the guard keeps. */
export function carriesInjectionMarkers(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[ANNOTATION_STATUS] !== undefined || pod.metadata?.labels?.[LABEL_INJECTED] === 'true';
}

/** The sidecar's port numbers, and whether a port name is sluice's (`sluice-admin`, the PodMonitor's). */
function sidecarPorts(config: WebhookConfig): ReadonlySet<number> {
  const p = config.sidecar.ports;
  return new Set([p.transparent, p.proxy, p.dns, p.admin]);
}
const isSluicePortName = (name: string | undefined) => name !== undefined && name.toLowerCase().startsWith('sluice');

/** What the guard derives from a (frozen) config once, not per review. */
interface GuardPlan {
  /** Static-credential Secrets: the configured ones, every Secret the sidecar mounts, its pull secrets. */
  staticSecrets: readonly string[];
  forbiddenCapabilities: ReadonlySet<string>;
}
const plans = new WeakMap<WebhookConfig, GuardPlan>();
function planFor(config: WebhookConfig): GuardPlan {
  let plan = plans.get(config);
  if (!plan) {
    plan = {
      // The sidecar image's pull secrets too: a registry credential is sluice's, not the agent's.
      staticSecrets: [
        ...config.guard.staticCredentialSecrets,
        ...config.sidecar.mounts.flatMap((m) => ('secret' in m ? [m.secret] : [])),
        ...config.sidecar.imagePullSecrets.map((r) => r.name),
      ],
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

/** A Secret reference of the pod: static credentials and legacy service-account tokens are refused. */
function secretReferenceViolations(name: string | undefined, field: string, config: WebhookConfig, who: string): Violation[] {
  if (!name) return [];
  if (secretListed(name, planFor(config).staticSecrets)) return [violation('guard.static_credential', field, `${who} Secret "${name}", which holds static credentials; sluice mints short-lived ones instead`)];
  if (LEGACY_TOKEN_NAME.test(name)) {
    return [violation('guard.legacy_token_secret', field, `${who} Secret "${name}", named like a legacy service-account token Secret (a long-lived API token); agents reach the API through the sidecar`)];
  }
  return [];
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
    out.push(...secretReferenceViolations(v.secret?.secretName, `spec.volumes[${i}].secret.secretName`, config, 'the volume mounts'));
    (v.projected?.sources ?? []).forEach((s, j) => {
      if (s.configMap?.name === settings) {
        out.push(violation('guard.sluice_settings', `spec.volumes[${i}].projected.sources[${j}].configMap.name`, `ConfigMap "${settings}" holds the sidecar's settings; agents may not read it`));
      }
      out.push(...secretReferenceViolations(s.secret?.name, `spec.volumes[${i}].projected.sources[${j}].secret.name`, config, 'the volume projects'));
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
    const name = normaliseCapability(cap);
    if (forbidden.has(name)) {
      out.push(violation('guard.capability', `${f}.securityContext.capabilities.add[${i}]`, `${who} adds ${JSON.stringify(cap)}, which could bypass or rewrite the interception rules`));
    }
    if (UID_CAPABILITIES.has(name)) {
      out.push(violation('guard.uid_change', `${f}.securityContext.capabilities.add[${i}]`, `${who} adds ${JSON.stringify(cap)}, with which it could switch to UID ${uid}, the sidecar's, which the interception rules exempt`));
    }
  });
  // The UID exemption (docs/webhook.md): an agent process must never become UID `uid`. It runs as
  // an explicit UID (not the image's USER, which admission cannot see), cannot gain privileges
  // through setuid binaries or file capabilities, and, as root, holds no SETUID/SETGID.
  if (c.securityContext?.allowPrivilegeEscalation !== false) {
    out.push(violation('guard.privilege_escalation', `${f}.securityContext.allowPrivilegeEscalation`, `${who} must set allowPrivilegeEscalation: false (a setuid binary could otherwise switch it to UID ${uid}, the sidecar's)`));
  }
  const user = effectiveSecurity(pod, agent, 'runAsUser');
  if (user.value === undefined || user.value === null) {
    out.push(violation('guard.uid_unset', `${f}.securityContext.runAsUser`, `${who} must run as an explicit runAsUser (container or pod): without one the image's USER decides, and an image built with USER ${uid} would run as the sidecar`));
  }
  if (user.value === uid) out.push(violation('guard.proxy_uid', user.field, `${who} runs as UID ${uid}, the sidecar's, which the interception rules exempt`, f));
  if (user.value === 0) {
    if (config.guard.forbidRootAgents) out.push(violation('guard.root_user', user.field, `${who} runs as root, which this cluster's sluice config forbids for agents`, f));
    const dropped = new Set((c.securityContext?.capabilities?.drop ?? []).map(normaliseCapability));
    if (!dropped.has('ALL') && !(dropped.has('SETUID') && dropped.has('SETGID'))) {
      out.push(violation('guard.uid_change', `${f}.securityContext.capabilities.drop`, `${who} runs as root holding CAP_SETUID/CAP_SETGID and could switch to UID ${uid}, the sidecar's: drop ALL (or SETUID and SETGID), or run as a non-root UID`, f));
    }
  }
  const group = effectiveSecurity(pod, agent, 'runAsGroup');
  if (group.value === uid) out.push(violation('guard.proxy_gid', group.field, `${who} runs as GID ${uid}, the sidecar's, which the interception rules exempt`, f));
  const ports = sidecarPorts(config);
  (c.ports ?? []).forEach((p, i) => {
    if (ports.has(p.containerPort)) {
      out.push(violation('guard.reserved_port', `${f}.ports[${i}].containerPort`, `${who} declares port ${p.containerPort}, which belongs to the sluice sidecar`));
    }
    if (p.hostPort !== undefined && ports.has(p.hostPort)) {
      out.push(violation('guard.reserved_port', `${f}.ports[${i}].hostPort`, `${who} declares host port ${p.hostPort}, a port of the sluice sidecar`));
    }
    if (isSluicePortName(p.name)) {
      out.push(violation('guard.reserved_port', `${f}.ports[${i}].name`, `${who} names a port "${p.name}": port names starting with "sluice" are the sidecar's (its metrics are scraped by that name)`));
    }
  });
  const agentMount = renderInjection(config).agentMount.name;
  (c.volumeMounts ?? []).forEach((m, i) => {
    const mf = `${f}.volumeMounts[${i}]`;
    if (isSluiceVolume(m.name) && !(m.name === agentMount && m.readOnly === true)) {
      out.push(violation('guard.sluice_volume', `${mf}.name`, `${who} mounts "${m.name}", which belongs to the sluice sidecar (only the trust bundle, read-only, is shared)`));
    } else if (tokenVolumes.has(m.name)) {
      out.push(violation('guard.service_account_token', `${mf}.name`, `${who} mounts a service-account token ("${m.name}"); agents reach the API through the sidecar`));
    }
  });
  const settings = config.sidecar.sidecarConfigMap;
  (c.env ?? []).forEach((e, i) => {
    out.push(...secretReferenceViolations(e.valueFrom?.secretKeyRef?.name, `${f}.env[${i}].valueFrom.secretKeyRef.name`, config, `${who} reads`));
    if (e.valueFrom?.configMapKeyRef?.name === settings) {
      out.push(violation('guard.sluice_settings', `${f}.env[${i}].valueFrom.configMapKeyRef.name`, `${who} reads ConfigMap "${settings}", the sidecar's settings`));
    }
  });
  (c.envFrom ?? []).forEach((e, i) => {
    out.push(...secretReferenceViolations(e.secretRef?.name, `${f}.envFrom[${i}].secretRef.name`, config, `${who} reads`));
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

function markersOnCreate(pod: V1Pod): Violation[] {
  const out: Violation[] = [];
  if (pod.metadata?.labels?.[LABEL_INJECTED] !== 'true') {
    out.push(violation('guard.injection_marker', `metadata.labels[${LABEL_INJECTED}]`, `an injected pod must carry the label ${LABEL_INJECTED}: "true" that the sluice mutating webhook writes`));
  }
  if (pod.metadata?.annotations?.[ANNOTATION_STATUS] === undefined) {
    out.push(violation('guard.injection_marker', `metadata.annotations[${ANNOTATION_STATUS}]`, 'an injected pod must carry the status annotation that the sluice mutating webhook writes'));
  }
  return out;
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
    ...creatorOnCreate(pod, ctx.creator ?? ctx.userInfo),
    ...markersOnCreate(pod),
  ];
}

/**
 * The markers on UPDATE. An injected pod keeps them and its `sluice.io/inject` label exactly: a
 * flip to "false" (or removing the label) must not take it out of the webhook's and the policy's
 * view. A pod sluice did not inject may not acquire them either (they would claim a sidecar).
 */
function markerViolations(oldPod: V1Pod, pod: V1Pod): Violation[] {
  const out: Violation[] = [];
  const fields: [string, (p: V1Pod) => string | undefined][] = [
    [`metadata.labels[${LABEL_INJECTED}]`, (p) => p.metadata?.labels?.[LABEL_INJECTED]],
    [`metadata.annotations[${ANNOTATION_STATUS}]`, (p) => p.metadata?.annotations?.[ANNOTATION_STATUS]],
  ];
  if (carriesInjectionMarkers(oldPod)) fields.push([`metadata.labels[${LABEL_INJECT}]`, (p) => p.metadata?.labels?.[LABEL_INJECT]]);
  for (const [field, read] of fields) {
    if (read(oldPod) !== read(pod)) {
      out.push(violation('guard.injection_marker', field, 'an injected pod stays injected: this label or annotation cannot be changed, added or removed'));
    }
  }
  return out;
}

/**
 * The kill switch: anyone who may update the pod may engage it (set it to "true": failing closed is
 * always allowed, so an on-call developer can stop an agent at once); every other change — clearing
 * it, or any other value — is an approver's decision (approvals.approverGroups, per namespace).
 */
function killSwitchViolations(oldPod: V1Pod, pod: V1Pod, ctx: GuardContext, config: WebhookConfig): Violation[] {
  const before = oldPod.metadata?.annotations?.[ANNOTATION_KILL];
  const after = pod.metadata?.annotations?.[ANNOTATION_KILL];
  if (before === after || after === 'true' || isApprover(ctx.userInfo, ctx.namespace, config)) return [];
  return [violation('guard.kill_switch', `metadata.annotations[${ANNOTATION_KILL}]`, `only approvers may clear or change the kill switch (${before === undefined ? 'unset' : JSON.stringify(before)} → ${after === undefined ? 'removed' : JSON.stringify(after)}); anyone may set it to "true"`)];
}

/**
 * A pod update (including pods/ephemeralcontainers): sluice's containers, volumes and the creator
 * stamp must not change, and the update may not add a violation the old pod did not have.
 */
export function guardPodUpdate(oldPod: V1Pod, pod: V1Pod, ctx: GuardContext, config: WebhookConfig, subResource = ''): Violation[] {
  if (!isSluicePod(oldPod, ctx.namespace, ctx.namespaceOptedIn, config) && !isSluicePod(pod, ctx.namespace, ctx.namespaceOptedIn, config)) {
    // Not sluice's pod (and not becoming one): it may still not claim to be.
    return markerViolations(oldPod, pod);
  }
  const out: Violation[] = [...markerViolations(oldPod, pod), ...killSwitchViolations(oldPod, pod, ctx, config)];
  const sluiceParts = (p: V1Pod) => ({
    init: (p.spec?.initContainers ?? []).slice(0, sluicePrefixLength(p)),
    volumes: (p.spec?.volumes ?? []).filter((v) => isSluiceVolume(v.name)),
  });
  const before = sluiceParts(oldPod);
  const after = sluiceParts(pod);
  if (!sameSpec(after.init, before.init)) {
    if (subResource === 'resize') out.push(violation('guard.sidecar_resize', 'spec.initContainers', "pods/resize may not change the resources of sluice's containers"));
    else out.push(violation(after.init.length < before.init.length ? 'guard.sidecar_missing' : 'guard.sidecar_modified', 'spec.initContainers', "an update may not remove or change sluice's containers"));
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

/**
 * pods/proxy: the API server itself connects to `<pod IP>:<port>` named in the request's name
 * (`[scheme:]pod[:port]`), so the port is decidable here: never one of the sidecar's, by number or
 * by a `sluice*` name (agent containers cannot declare either: guard.reserved_port).
 */
export function guardProxy(name: string | undefined, config: WebhookConfig): Violation[] {
  const parts = (name ?? '').split(':');
  const port = parts.length >= 2 ? parts[parts.length - 1]! : '';
  if (port === '') return [];
  const numeric = /^[0-9]+$/.test(port) ? Number(port) : undefined;
  if ((numeric !== undefined && sidecarPorts(config).has(numeric)) || isSluicePortName(port)) {
    return [violation('guard.port_forward', 'proxy.port', `pods/proxy to port ${port} is refused: it is the sluice sidecar's (its proxy would act with the pod's credentials)`)];
  }
  return [];
}

/**
 * pods/portforward. The options carry `ports` only for the WebSocket protocol; over SPDY (what
 * kubectl speaks, also tunnelled through WebSockets) the ports travel in stream headers after
 * admission, and the kubelet does not hold them to the query. So: a port named in the options that
 * is the sidecar's is refused everywhere; to an injected pod — every pod of a namespace opted in
 * to sluice (scope "namespace"), or a pod the webhook read and found injected (`podInjected`) —
 * only approvers may port-forward at all.
 */
export function guardPortForward(options: { ports?: readonly number[] | undefined }, ctx: GuardContext, config: WebhookConfig, podInjected = false): Violation[] {
  const sidecar = sidecarPorts(config);
  const out: Violation[] = [];
  (options.ports ?? []).forEach((p, i) => {
    if (sidecar.has(p)) out.push(violation('guard.port_forward', `portforward.ports[${i}]`, `port-forward to port ${p} is refused: it is the sluice sidecar's`));
  });
  if ((ctx.namespaceOptedIn || podInjected) && !isApprover(ctx.userInfo, ctx.namespace, config)) {
    out.push(violation('guard.port_forward', 'portforward', 'only approvers may port-forward to a pod sluice injected: the ports are chosen after admission, so the sidecar\'s cannot be ruled out'));
  }
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
