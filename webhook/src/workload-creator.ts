// Who created a pod or workload, for the creator stamp (sluice.io/creator) the self-approval rule
// reads. The creator of a workload is the creator of its pods:
//   - a controller (the API server authenticated the caller as one of creators.controllers) making
//     an object with a controller ownerReference to a ReplicaSet, Deployment, StatefulSet,
//     DaemonSet, Job or CronJob passes on that owner's stamp, read from the API server with the
//     webhook's own credentials (pod → ReplicaSet → Deployment, pod → Job → CronJob);
//   - a sluice agent pod acting through a token bound to it (userInfo.extra pod-name/pod-uid)
//     passes on its own pod's stamp: what an agent makes belongs to whoever made the agent;
//   - anyone else is the creator themselves (the AdmissionReview's userInfo).
// An owner that cannot be read refuses the request (the controller retries); an owner chain that
// carries no stamp gives the "unknown creator" stamp, whose requests can only be denied.
// Workloads are stamped at admission (planWorkloadStamp): on create, and on every change of the pod
// template by whoever changed it; nobody but sluice may write the annotation.
// It never trusts an ownerReference from a caller who is not a controller: anyone may write one.
import { ANNOTATION_CREATOR, ANNOTATION_STATUS, UNKNOWN_CREATOR_USERNAME } from '../../api/src/index.ts';
import { z } from 'zod';
import { creatorStamp, parseCreatorStamp } from './creator.ts';
import type { UserInfo } from './creator.ts';
import { pointer } from './json-patch.ts';
import type { JsonPatchOp } from './json-patch.ts';
import { KubeReadError } from './kube-reader.ts';
import type { KubeReader } from './kube-reader.ts';
import { violation } from './violations.ts';
import type { Violation } from './violations.ts';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** The controllers of kube-controller-manager, with and without per-controller credentials. */
export const DEFAULT_CONTROLLERS = [
  'system:kube-controller-manager',
  ...['replicaset-controller', 'deployment-controller', 'statefulset-controller', 'daemon-set-controller', 'job-controller', 'cronjob-controller'].map((c) => `system:serviceaccount:kube-system:${c}`),
];

export const CreatorsConfig = z
  .object({
    /** Usernames whose creations inherit the creator stamp of their controller owner. */
    controllers: z.array(z.string().min(1)).default(DEFAULT_CONTROLLERS),
  })
  .strict();
export type CreatorsConfig = z.infer<typeof CreatorsConfig>;

/** Owner kinds whose stamp passes to what they control, and where the API serves them. */
export const OWNER_KINDS: Readonly<Record<string, { apiVersion: string; plural: string }>> = {
  ReplicaSet: { apiVersion: 'apps/v1', plural: 'replicasets' },
  Deployment: { apiVersion: 'apps/v1', plural: 'deployments' },
  StatefulSet: { apiVersion: 'apps/v1', plural: 'statefulsets' },
  DaemonSet: { apiVersion: 'apps/v1', plural: 'daemonsets' },
  Job: { apiVersion: 'batch/v1', plural: 'jobs' },
  CronJob: { apiVersion: 'batch/v1', plural: 'cronjobs' },
};

/** Resources the workload webhook stamps, by API group and plural. */
export const WORKLOAD_RESOURCES: Readonly<Record<string, string>> = {
  'apps/deployments': 'Deployment',
  'apps/replicasets': 'ReplicaSet',
  'apps/statefulsets': 'StatefulSet',
  'apps/daemonsets': 'DaemonSet',
  'batch/jobs': 'Job',
  'batch/cronjobs': 'CronJob',
};

/** Longest owner chain followed to find a stamp (pod → ReplicaSet → Deployment is two). */
const MAX_DEPTH = 4;

export interface Actor extends UserInfo {
  extra?: Readonly<Record<string, readonly string[]>> | undefined;
}

export interface OwnerReference {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  name?: string | undefined;
  uid?: string | undefined;
  controller?: boolean | undefined;
}

export const UNKNOWN_CREATOR_STAMP = creatorStamp({ username: UNKNOWN_CREATOR_USERNAME, groups: [] });

export type CreatorResolution =
  | { kind: 'stamp'; stamp: string; via: 'user' | 'owner' | 'agent-pod' | 'unknown' }
  | { kind: 'refuse'; violation: Violation };

interface Meta {
  uid?: string;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

const metaOf = (obj: Record<string, unknown> | undefined): Meta => ((obj?.metadata ?? {}));

/** The controller ownerReference of a kind whose stamp passes on, if any. */
export function controllerOwner(refs: readonly OwnerReference[] | undefined): OwnerReference | undefined {
  const ref = refs?.find((r) => r.controller === true);
  if (!ref?.kind || !ref.name || !ref.uid) return undefined;
  const known = OWNER_KINDS[ref.kind];
  return known && ref.apiVersion === known.apiVersion ? ref : undefined;
}

function unresolved(message: string): CreatorResolution {
  return { kind: 'refuse', violation: violation('creator.unresolved', `metadata.annotations[${ANNOTATION_CREATOR}]`, `${message}; refused so that no pod runs without a creator sluice can vouch for (the controller retries)`) };
}

async function read(reader: KubeReader | undefined, path: string, what: string): Promise<Record<string, unknown> | undefined | CreatorResolution> {
  if (!reader) return unresolved(`the sluice webhook has no Kubernetes API access configured to read ${what}`);
  try {
    return await reader.get(path);
  } catch (err) {
    if (err instanceof KubeReadError) return unresolved(`cannot read ${what}: ${err.message}`);
    throw err;
  }
}

const isResolution = (v: unknown): v is CreatorResolution => typeof v === 'object' && v !== null && 'kind' in v && (v.kind === 'refuse' || v.kind === 'stamp');

/** The stamp an owner passes on, following its own controller owner while it carries none. */
async function ownerStamp(reader: KubeReader | undefined, namespace: string, ref: OwnerReference, depth = 1): Promise<CreatorResolution> {
  const kind = OWNER_KINDS[ref.kind!]!;
  const what = `the owner ${ref.kind} ${namespace}/${ref.name}`;
  const got = await read(reader, `/apis/${kind.apiVersion}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}/${encodeURIComponent(ref.name!)}`, what);
  if (isResolution(got)) return got;
  if (!got) return unresolved(`${what} does not exist`);
  const meta = metaOf(got);
  if (meta.uid !== ref.uid) return unresolved(`${what} has uid ${meta.uid ?? '(none)'}, not the ${ref.uid} the ownerReference names`);
  const stamp = meta.annotations?.[ANNOTATION_CREATOR];
  if (stamp !== undefined && parseCreatorStamp(stamp)) return { kind: 'stamp', stamp, via: 'owner' };
  const next = controllerOwner(meta.ownerReferences);
  if (next && depth < MAX_DEPTH) return ownerStamp(reader, namespace, next, depth + 1);
  return { kind: 'stamp', stamp: UNKNOWN_CREATOR_STAMP, via: 'unknown' };
}

/**
 * The creator stamp for an object `actor` is creating or changing in `namespace`, whose
 * ownerReferences are `owners`. Reads the API server only for controllers and pod-bound tokens.
 */
export async function resolveCreator(actor: Actor, namespace: string, owners: readonly OwnerReference[] | undefined, config: CreatorsConfig, reader: KubeReader | undefined): Promise<CreatorResolution> {
  const username = actor.username ?? '';
  if (config.controllers.includes(username)) {
    const ref = controllerOwner(owners);
    if (ref) return ownerStamp(reader, namespace, ref);
  }
  const podName = actor.extra?.[POD_NAME_EXTRA]?.[0];
  const podUid = actor.extra?.[POD_UID_EXTRA]?.[0];
  // A pod-bound token's pod lives in its ServiceAccount's namespace, whichever namespace it acts in.
  const podNamespace = /^system:serviceaccount:([^:]+):[^:]+$/.exec(username)?.[1];
  if (podName && podUid && podNamespace) {
    const what = `the pod ${podNamespace}/${podName} the caller's token is bound to`;
    const got = await read(reader, `/api/v1/namespaces/${encodeURIComponent(podNamespace)}/pods/${encodeURIComponent(podName)}`, what);
    if (isResolution(got)) return got;
    if (!got) return unresolved(`${what} does not exist`);
    const meta = metaOf(got);
    if (meta.uid !== podUid) return unresolved(`${what} has uid ${meta.uid ?? '(none)'}, not the token's ${podUid}`);
    // Only a sluice agent pod passes its creator on; an operator's own pod acts as its account.
    if (meta.annotations?.[ANNOTATION_STATUS] !== undefined) {
      const stamp = meta.annotations[ANNOTATION_CREATOR];
      return stamp !== undefined && parseCreatorStamp(stamp) ? { kind: 'stamp', stamp, via: 'agent-pod' } : { kind: 'stamp', stamp: UNKNOWN_CREATOR_STAMP, via: 'unknown' };
    }
  }
  return { kind: 'stamp', stamp: creatorStamp(actor), via: 'user' };
}

/** The UserInfo a stamp stands for (what the injector and guard compare the pod's stamp with). */
export function stampUser(stamp: string): UserInfo {
  const c = parseCreatorStamp(stamp);
  return c ? { username: c.username, uid: c.uid, groups: c.groups } : { username: UNKNOWN_CREATOR_USERNAME, groups: [] };
}

// --- workloads ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function at(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Obj)[p];
  }
  return cur;
}

/** Where a workload keeps its pod template (a CronJob one level deeper). */
export function templatePath(kind: string): string[] {
  return kind === 'CronJob' ? ['spec', 'jobTemplate', 'spec', 'template'] : ['spec', 'template'];
}

function stableJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Obj).sort(([a], [b]) => a.localeCompare(b))) : v));
}

export interface WorkloadInput {
  operation: 'CREATE' | 'UPDATE';
  kind: string;
  object: Obj;
  oldObject?: Obj | undefined;
  /** The caller is a controller acting for the object's controller owner (stamp is the owner's). */
  viaController: boolean;
  /** What resolveCreator gave for this caller. */
  stamp: string;
}

export interface WorkloadPlan {
  violations: Violation[];
  patch: JsonPatchOp[];
}

/**
 * The stamp a workload must carry after this change and the patch that writes it: on create and
 * on a pod-template change the caller's (a controller's: its owner's), else the stamp it had. A
 * caller writing the annotation (or one into the pod template) is refused; a controller's copy is
 * overwritten. Pure.
 */
export function planWorkloadStamp(w: WorkloadInput): WorkloadPlan {
  const field = `metadata.annotations[${ANNOTATION_CREATOR}]`;
  const violations: Violation[] = [];
  const tpl = templatePath(w.kind);
  const templateSpots = w.kind === 'CronJob' ? [[...tpl, 'metadata'], ['spec', 'jobTemplate', 'metadata']] : [[...tpl, 'metadata']];
  if (!w.viaController) {
    for (const spot of templateSpots) {
      const annotations = at(w.object, ...spot, 'annotations') as Record<string, unknown> | undefined;
      if (annotations && ANNOTATION_CREATOR in annotations) {
        violations.push(violation('creator.forged', `${spot.join('.')}.annotations[${ANNOTATION_CREATOR}]`, 'the creator stamp is written by sluice on the workload; a pod template may not carry one'));
      }
    }
  }
  const annotations = at(w.object, 'metadata', 'annotations') as Record<string, string> | undefined;
  const current = annotations?.[ANNOTATION_CREATOR];
  const before = (at(w.oldObject, 'metadata', 'annotations') as Record<string, string> | undefined)?.[ANNOTATION_CREATOR];
  const templateChanged = w.operation === 'CREATE' || stableJson(at(w.object, ...tpl)) !== stableJson(at(w.oldObject, ...tpl));
  // A controller's update that leaves the template alone (scaling an old ReplicaSet, adopting one
  // somebody else made) keeps the stamp of whoever wrote that template: re-inheriting would let a
  // user's own ReplicaSet, adopted by someone else's Deployment, pass as theirs.
  const wanted = templateChanged || (w.viaController && before === undefined) ? w.stamp : before;
  if (!w.viaController && current !== undefined && current !== wanted && (w.operation === 'CREATE' || current !== before)) {
    violations.push(violation('creator.forged', field, `the creator annotation is written by sluice from the authenticated user who last changed the pod template; a supplied value (${current.slice(0, 120)}) is refused`));
  }
  if (violations.length) return { violations, patch: [] };
  const patch: JsonPatchOp[] = [];
  if (current !== wanted) {
    if (wanted === undefined) patch.push({ op: 'remove', path: pointer('metadata', 'annotations', ANNOTATION_CREATOR) });
    else if (!annotations) patch.push({ op: 'add', path: pointer('metadata', 'annotations'), value: { [ANNOTATION_CREATOR]: wanted } });
    else patch.push({ op: 'add', path: pointer('metadata', 'annotations', ANNOTATION_CREATOR), value: wanted });
  }
  return { violations, patch };
}
