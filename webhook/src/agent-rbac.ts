// The approvals RBAC of an agent namespace that the chart does not list (agents.namespaces): when
// the webhook injects a pod, it makes sure the pod's namespace holds two RoleBindings to the
// chart's ClusterRoles — the sidecar's (create/watch its ApprovalRequests, in that namespace only)
// for the namespace's service accounts, and the approvers' for the approver groups the webhook
// lets decide there. Without them a labelled namespace gets a working sidecar whose held requests
// are all refused. Reads stay namespace-scoped: nothing here grants anything outside the pod's
// namespace, and nothing binds a cluster-wide group.
// The pure part (desiredRoleBindings, bindingAction) decides; AgentRbacEnsurer does the GET and
// the create/update with the webhook's own credentials. It never deletes, never rewrites a
// binding whose roleRef is not ours (roleRef is immutable: that is refused loudly), and never
// blocks longer than the configured timeout; a namespace it ensured is not re-read for
// recheckSeconds, so only the first pod of a namespace pays for the API round trip.
import { request } from 'undici';
import { z } from 'zod';
import { approverGroupsFor } from './approvals/config.ts';
import type { WebhookConfig } from './config.ts';
import type { KubeAccess } from './kube-reader.ts';

const objectName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a Kubernetes object name (lower-case DNS subdomain)');

const BindingTarget = z
  .object({
    /** The ClusterRole the RoleBinding refers to (the webhook needs `bind` on exactly it). */
    clusterRole: objectName,
    /** The RoleBinding's name in every agent namespace (distinct from the chart's own bindings). */
    bindingName: objectName,
  })
  .strict();

export const AgentRbacConfig = z
  .object({
    /** The sidecar's approvals rules, bound to the namespace's service accounts. */
    sidecar: BindingTarget,
    /** The approvers' rules, bound to the groups approvals.approverGroups (or the namespace's own). */
    approvers: BindingTarget.optional(),
    /** Only these service accounts of the namespace (agents.serviceAccounts); empty: all of them. */
    serviceAccounts: z.array(z.string().min(1)).default([]),
    /** An ensured namespace is checked again after this long (a deleted binding comes back). */
    recheckSeconds: z.number().int().min(10).max(86_400).default(300),
    /** Each API call is abandoned after this. */
    timeoutMs: z.number().int().min(100).max(5_000).default(1_500),
    /**
     * How long an admission waits for the bindings; past it the pod is answered (with a warning)
     * while the calls finish in the background. The injector registration's timeout is 5 s, and the
     * creator lookup may take up to kube.timeoutMs (2 s) of it.
     */
    admissionBudgetMs: z.number().int().min(100).max(2_500).default(2_000),
  })
  .strict();
export type AgentRbacConfig = z.infer<typeof AgentRbacConfig>;

export const RBAC_GROUP = 'rbac.authorization.k8s.io';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'sluice-webhook';

export interface Subject {
  kind: 'Group' | 'ServiceAccount';
  apiGroup?: string;
  name: string;
  namespace?: string;
}

export interface RoleBinding {
  apiVersion: 'rbac.authorization.k8s.io/v1';
  kind: 'RoleBinding';
  metadata: { name: string; namespace: string; labels: Record<string, string>; resourceVersion?: string };
  roleRef: { apiGroup: string; kind: 'ClusterRole'; name: string };
  subjects: Subject[];
}

function binding(target: { clusterRole: string; bindingName: string }, namespace: string, component: string, subjects: Subject[]): RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: target.bindingName, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': component } },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: target.clusterRole },
    subjects,
  };
}

/** The RoleBindings an agent namespace must hold for approvals to work there. */
export function desiredRoleBindings(rbac: AgentRbacConfig, approvals: WebhookConfig['approvals'], namespace: string): RoleBinding[] {
  const accounts: Subject[] = rbac.serviceAccounts.length
    ? rbac.serviceAccounts.map((name) => ({ kind: 'ServiceAccount', name, namespace }))
    : [{ kind: 'Group', apiGroup: RBAC_GROUP, name: `system:serviceaccounts:${namespace}` }];
  const out = [binding(rbac.sidecar, namespace, 'sidecar', accounts)];
  if (rbac.approvers) {
    out.push(binding(rbac.approvers, namespace, 'approvals', approverGroupsFor(approvals, namespace).map((name) => ({ kind: 'Group', apiGroup: RBAC_GROUP, name }))));
  }
  return out;
}

const subjectKey = (s: { kind?: unknown; apiGroup?: unknown; name?: unknown; namespace?: unknown }) =>
  JSON.stringify([s.kind, s.kind === 'ServiceAccount' ? '' : (s.apiGroup ?? ''), s.name, s.kind === 'ServiceAccount' ? (s.namespace ?? '') : '']);

export type BindingAction = { kind: 'create'; body: RoleBinding } | { kind: 'none' } | { kind: 'update'; body: RoleBinding } | { kind: 'conflict'; message: string };

/**
 * What to do given what the API server stores under the binding's name: create it, leave it, set
 * its subjects back to ours (someone added or removed one), or refuse (it refers to another role:
 * roleRef cannot change, and deleting an object we may not have made is not ours to do).
 */
export function bindingAction(existing: Record<string, unknown> | undefined, desired: RoleBinding): BindingAction {
  if (!existing) return { kind: 'create', body: desired };
  const ref = (existing.roleRef ?? {}) as { apiGroup?: unknown; kind?: unknown; name?: unknown };
  const where = `RoleBinding ${desired.metadata.namespace}/${desired.metadata.name}`;
  if (ref.apiGroup !== desired.roleRef.apiGroup || ref.kind !== desired.roleRef.kind || ref.name !== desired.roleRef.name) {
    return { kind: 'conflict', message: `${where} exists and refers to ${String(ref.kind)} ${String(ref.name)}, not ClusterRole ${desired.roleRef.name}; sluice does not replace it (delete or rename it)` };
  }
  const have = Array.isArray(existing.subjects) ? (existing.subjects as Subject[]).map(subjectKey).sort() : [];
  const want = desired.subjects.map(subjectKey).sort();
  if (JSON.stringify(have) === JSON.stringify(want)) return { kind: 'none' };
  const meta = (existing.metadata ?? {}) as { resourceVersion?: string; labels?: Record<string, string> };
  return {
    kind: 'update',
    body: { ...desired, metadata: { ...desired.metadata, labels: { ...meta.labels, ...desired.metadata.labels }, ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}) } },
  };
}

export class AgentRbacError extends Error {
  readonly code = 'SLUICE_WEBHOOK_AGENT_RBAC';
  constructor(message: string) {
    super(message);
    this.name = 'AgentRbacError';
  }
}

/** The webhook's side effect at injection: GET, then create or update, each binding of a namespace. */
export class AgentRbacEnsurer {
  readonly #rbac: AgentRbacConfig;
  readonly #approvals: WebhookConfig['approvals'];
  readonly #access: KubeAccess;
  readonly #now: () => number;
  /** namespace → when it must be checked again */
  readonly #ensured = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(rbac: AgentRbacConfig, approvals: WebhookConfig['approvals'], access: KubeAccess, now: () => number = Date.now) {
    this.#rbac = rbac;
    this.#approvals = approvals;
    this.#access = access;
    this.#now = now;
  }

  /** Resolves once both bindings are in place; an AgentRbacError says what is missing and why. */
  ensure(namespace: string): Promise<void> {
    const until = this.#ensured.get(namespace);
    if (until !== undefined && until > this.#now()) return Promise.resolve();
    const running = this.#inFlight.get(namespace);
    if (running) return running;
    const job = this.#ensureNow(namespace).finally(() => this.#inFlight.delete(namespace));
    this.#inFlight.set(namespace, job);
    return job;
  }

  /**
   * ensure() bounded by admissionBudgetMs: an API server that answers slowly must not make the
   * API server's own call to the webhook time out (failurePolicy Fail would refuse the pod).
   */
  async ensureForAdmission(namespace: string): Promise<void> {
    const job = this.ensure(namespace);
    let timer: NodeJS.Timeout | undefined;
    const budget = this.#rbac.admissionBudgetMs;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AgentRbacError(`not done within ${budget} ms; still trying in the background`)), budget);
    });
    job.catch(() => undefined);
    try {
      await Promise.race([job, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #ensureNow(namespace: string): Promise<void> {
    // Both at once: the first pod of a namespace waits for one round trip (two with a create).
    await Promise.all(desiredRoleBindings(this.#rbac, this.#approvals, namespace).map((desired) => this.#ensureOne(desired)));
    this.#ensured.set(namespace, this.#now() + this.#rbac.recheckSeconds * 1000);
  }

  async #ensureOne(desired: RoleBinding, attempt = 0): Promise<void> {
    const base = `/apis/rbac.authorization.k8s.io/v1/namespaces/${encodeURIComponent(desired.metadata.namespace)}/rolebindings`;
    const path = `${base}/${encodeURIComponent(desired.metadata.name)}`;
    const got = await this.#call('GET', path);
    if (got.status !== 200 && got.status !== 404) throw this.#error('GET', path, got);
    const action = bindingAction(got.status === 404 ? undefined : got.body, desired);
    if (action.kind === 'none') return;
    if (action.kind === 'conflict') throw new AgentRbacError(action.message);
    const res = action.kind === 'create' ? await this.#call('POST', base, action.body) : await this.#call('PUT', path, action.body);
    // Another replica got there first (409 on create, or a stale resourceVersion): read again, once.
    if (res.status === 409 && attempt === 0) return this.#ensureOne(desired, 1);
    if (res.status !== 200 && res.status !== 201) throw this.#error(action.kind === 'create' ? 'POST' : 'PUT', action.kind === 'create' ? base : path, res);
  }

  #error(method: string, path: string, res: { status: number; body: Record<string, unknown> }): AgentRbacError {
    return new AgentRbacError(`${method} ${path}: ${res.status} ${typeof res.body.message === 'string' ? res.body.message : ''}`.trim());
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const timeout = this.#rbac.timeoutMs;
    let res;
    try {
      res = await request(`${this.#access.server}${path}`, {
        method,
        dispatcher: this.#access.dispatcher,
        headers: { authorization: `Bearer ${this.#access.token()}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
    } catch (err) {
      throw new AgentRbacError(`${method} ${path}: API server unreachable (${(err as Error).message})`);
    }
    const text = await res.body.text();
    try {
      return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { status: res.statusCode, body: { message: text.slice(0, 300) } };
    }
  }
}

