// The injector: pod + config → JSONPatch (RFC 6902). Pure; the HTTP shell only decodes and encodes.
// Invariants: (1) it adds only what sluice owns — its two init containers, its volumes, the
// sidecar image's pull secrets (appended, the pod's own kept), its annotations, env and one
// read-only mount in agent containers — and removes only the default service-account token
// that the ServiceAccount admission plugin put into agent containers;
// (2) running it on its own output yields an empty patch, so reinvocation adds nothing;
// (3) an agent's own env value wins over sluice's (HTTP_PROXY already set stays as it is);
// (4) the one securityContext field it fills in is allowPrivilegeEscalation: false on agent
// containers that leave it unset (the guard requires it: docs/webhook.md, "The UID exemption").
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { ANNOTATION_CREATOR, ANNOTATION_STATUS, LABEL_INJECTED } from '../../api/src/index.ts';
import type { WebhookConfig } from './config.ts';
import { creatorStamp } from './creator.ts';
import type { UserInfo } from './creator.ts';
import { pointer } from './json-patch.ts';
import type { JsonPatchOp } from './json-patch.ts';
import { agentContainers, selectForInjection, sluicePrefixLength } from './pod-model.ts';
import type { Selection } from './pod-model.ts';
import { renderInjection } from './render.ts';
import type { Rendered } from './render.ts';
import { modifiedSidecarViolations, reservedNameViolations } from './sidecar-integrity.ts';
import { violation } from './violations.ts';
import type { Violation } from './violations.ts';

export interface MutationContext {
  /** The request's namespace (a pod being created may not carry metadata.namespace yet). */
  namespace: string;
  /** The webhook configuration matched the pod through its namespace's opt-in label. */
  namespaceOptedIn: boolean;
  userInfo: UserInfo;
}

export type InjectResult =
  | { kind: 'skip'; reason: Extract<Selection, { inject: false }>['reason'] }
  | { kind: 'deny'; violations: Violation[] }
  | { kind: 'patch'; patch: JsonPatchOp[]; reason: Extract<Selection, { inject: true }>['reason'] };

/** The status annotation: which injector produced the pod and what it owns in it. */
export function statusAnnotation(config: WebhookConfig, rendered: Rendered): string {
  return JSON.stringify({
    version: config.injectorVersion,
    initContainers: [rendered.initContainer.name, rendered.sidecar.name],
    volumes: rendered.volumes.map((v) => v.name),
    // Only in CNI mode, so init-mode pods keep the annotation they always had.
    ...(config.interception.mode === 'cni' ? { interception: 'cni' } : {}),
  });
}

/** The volume the ServiceAccount admission plugin adds for the default token (kube-api-access-xxxxx). */
export function isDefaultTokenVolume(v: V1Volume): boolean {
  return v.name.startsWith('kube-api-access-') && (v.projected?.sources ?? []).some((s) => s.serviceAccountToken !== undefined);
}

/**
 * allowPrivilegeEscalation: false where the container leaves it unset, so no setuid binary can move
 * an agent process to the sidecar's UID. Not where the API server would reject the combination
 * (privileged, or adding SYS_ADMIN): the guard then names the real problem.
 */
function privilegeEscalationOps(container: V1Container, path: (string | number)[]): JsonPatchOp[] {
  const sc = container.securityContext;
  if (sc?.allowPrivilegeEscalation !== undefined && sc.allowPrivilegeEscalation !== null) return [];
  if (sc?.privileged === true || (sc?.capabilities?.add ?? []).some((c) => /^\s*(CAP_)?SYS_ADMIN\s*$/i.test(c))) return [];
  if (!sc) return [{ op: 'add', path: pointer(...path, 'securityContext'), value: { allowPrivilegeEscalation: false } }];
  return [{ op: 'add', path: pointer(...path, 'securityContext', 'allowPrivilegeEscalation'), value: false }];
}

function containerOps(container: V1Container, path: (string | number)[], rendered: Rendered, defaultTokenVolumes: ReadonlySet<string>): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [...privilegeEscalationOps(container, path)];
  const env = container.env ?? [];
  const have = new Set(env.map((e) => e.name));
  const missing = rendered.agentEnv.filter((e) => !have.has(e.name));
  if (!container.env && missing.length) ops.push({ op: 'add', path: pointer(...path, 'env'), value: missing });
  else for (const e of missing) ops.push({ op: 'add', path: pointer(...path, 'env', '-'), value: e });

  const mounts = container.volumeMounts ?? [];
  const keep = mounts.filter((m) => !defaultTokenVolumes.has(m.name));
  for (let i = mounts.length - 1; i >= 0; i--) {
    if (defaultTokenVolumes.has(mounts[i]!.name)) ops.push({ op: 'remove', path: pointer(...path, 'volumeMounts', i) });
  }
  if (!keep.some((m) => m.name === rendered.agentMount.name)) {
    if (!container.volumeMounts) ops.push({ op: 'add', path: pointer(...path, 'volumeMounts'), value: [rendered.agentMount] });
    else ops.push({ op: 'add', path: pointer(...path, 'volumeMounts', '-'), value: rendered.agentMount });
  }
  return ops;
}

/** Appends `sidecar.imagePullSecrets` the pod does not name yet; never removes or reorders the pod's own. */
function pullSecretOps(own: readonly { name?: string }[] | undefined, config: WebhookConfig): JsonPatchOp[] {
  const have = new Set((own ?? []).map((r) => r.name));
  const missing: { name: string }[] = [];
  for (const r of config.sidecar.imagePullSecrets) {
    if (have.has(r.name)) continue;
    have.add(r.name);
    missing.push({ name: r.name });
  }
  if (!missing.length) return [];
  if (!own) return [{ op: 'add', path: pointer('spec', 'imagePullSecrets'), value: missing }];
  return missing.map((r) => ({ op: 'add', path: pointer('spec', 'imagePullSecrets', '-'), value: r }));
}

function creatorViolation(pod: V1Pod, stamp: string): Violation | undefined {
  const current = pod.metadata?.annotations?.[ANNOTATION_CREATOR];
  if (current === undefined || current === stamp) return undefined;
  return violation(
    'guard.creator_forged',
    `metadata.annotations[${ANNOTATION_CREATOR}]`,
    `the creator annotation is set by sluice from the authenticated user; a supplied value (${current.slice(0, 120)}) is refused`,
  );
}

/** Plans the injection of one pod being created. */
export function planInjection(pod: V1Pod, ctx: MutationContext, config: WebhookConfig): InjectResult {
  const selection = selectForInjection(pod, ctx.namespace, ctx.namespaceOptedIn, config);
  if (!selection.inject) return { kind: 'skip', reason: selection.reason };
  const rendered = renderInjection(config);
  const stamp = creatorStamp(ctx.userInfo);
  const denied = [...reservedNameViolations(pod, rendered), ...modifiedSidecarViolations(pod, rendered)];
  const forged = creatorViolation(pod, stamp);
  if (forged) denied.push(forged);
  if (denied.length) return { kind: 'deny', violations: denied };

  const spec = pod.spec!;
  const ops: JsonPatchOp[] = [];
  const volumes = spec.volumes ?? [];
  const defaultTokenVolumes = new Set(volumes.filter(isDefaultTokenVolume).map((v) => v.name));

  // 1. Agent containers, at their original indices (the init-container insertion comes last).
  for (const agent of agentContainers(pod)) {
    if (agent.list === 'ephemeralContainers') continue;
    ops.push(...containerOps(agent.container, ['spec', agent.list, agent.index], rendered, defaultTokenVolumes));
  }
  // 2. The default token volume goes (agents no longer mount it; the sidecar has its own).
  for (let i = volumes.length - 1; i >= 0; i--) {
    if (defaultTokenVolumes.has(volumes[i]!.name)) ops.push({ op: 'remove', path: pointer('spec', 'volumes', i) });
  }
  // 3. sluice's volumes.
  const present = new Set(volumes.map((v) => v.name));
  const newVolumes = rendered.volumes.filter((v) => !present.has(v.name));
  if (!spec.volumes && newVolumes.length) ops.push({ op: 'add', path: pointer('spec', 'volumes'), value: newVolumes });
  else for (const v of newVolumes) ops.push({ op: 'add', path: pointer('spec', 'volumes', '-'), value: v });
  // 4. The interception init container, then the native sidecar, ahead of every other init container.
  const prefix = sluicePrefixLength(pod);
  if (!spec.initContainers) {
    ops.push({ op: 'add', path: pointer('spec', 'initContainers'), value: [rendered.initContainer, rendered.sidecar] });
  } else if (prefix < 2) {
    const first = spec.initContainers[0]?.name;
    if (prefix === 0 || first !== rendered.initContainer.name) ops.push({ op: 'add', path: pointer('spec', 'initContainers', 0), value: rendered.initContainer });
    if (prefix === 0 || first === rendered.initContainer.name) ops.push({ op: 'add', path: pointer('spec', 'initContainers', 1), value: rendered.sidecar });
  }
  // 5. No default token for agents; the ServiceAccount plugin skips the pod if it runs again.
  if (spec.automountServiceAccountToken !== false) ops.push({ op: 'add', path: pointer('spec', 'automountServiceAccountToken'), value: false });
  // 5b. Pull secrets for the sidecar image, after the pod's own, each name once.
  ops.push(...pullSecretOps(spec.imagePullSecrets, config));
  // 6. The injected label (what the guard's registration and the policy key on from now on).
  const labels = pod.metadata?.labels;
  if (labels?.[LABEL_INJECTED] !== 'true') {
    if (!pod.metadata) ops.push({ op: 'add', path: pointer('metadata'), value: {} });
    if (!labels) ops.push({ op: 'add', path: pointer('metadata', 'labels'), value: { [LABEL_INJECTED]: 'true' } });
    else ops.push({ op: 'add', path: pointer('metadata', 'labels', LABEL_INJECTED), value: 'true' });
  }
  // 7. Annotations: status and the creator stamp.
  const annotations = pod.metadata?.annotations;
  const status = statusAnnotation(config, rendered);
  const wanted: Record<string, string> = {};
  if (annotations?.[ANNOTATION_STATUS] !== status) wanted[ANNOTATION_STATUS] = status;
  if (annotations?.[ANNOTATION_CREATOR] === undefined) wanted[ANNOTATION_CREATOR] = stamp;
  if (!annotations && Object.keys(wanted).length) ops.push({ op: 'add', path: pointer('metadata', 'annotations'), value: wanted });
  else for (const [k, v] of Object.entries(wanted)) ops.push({ op: 'add', path: pointer('metadata', 'annotations', k), value: v });

  return { kind: 'patch', patch: ops, reason: selection.reason };
}
