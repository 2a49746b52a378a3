// The approvals RBAC of an agent namespace that the chart does not list (agents.namespaces): when
// the webhook injects a pod, it makes sure the pod's namespace holds two RoleBindings to the
// chart's ClusterRoles — the sidecar's (create/watch its ApprovalRequests, in that namespace only)
// for the namespace's service accounts, and the approvers' for the approver groups the webhook
// lets decide there. Without them a labelled namespace gets a working sidecar whose held requests
// are all refused. Reads stay namespace-scoped: nothing here grants anything outside the pod's
// namespace, and nothing binds a cluster-wide group.
// The pure part (desiredRoleBindings, bindingAction, staleBindings) decides; AgentRbacEnsurer does
// the GET and the create/update with the webhook's own credentials. It never rewrites a binding
// whose roleRef is not ours (roleRef is immutable: that is refused loudly), and never blocks longer
// than the configured timeout; a namespace it ensured is not re-read for recheckSeconds, so only
// the first pod of a namespace pays for the API round trip.
// AgentRbacCleaner takes them back: every cleanupSeconds it lists the RoleBindings the webhook made
// (its managed-by label, one of its two names, its roleRef) and deletes those of namespaces that are
// no longer agent namespaces — not labelled sluice.io/inject=true and running no pod sluice injected
// (a pod that opted in alone still needs them) — with the object's uid and resourceVersion as
// preconditions, so a binding someone replaced or that the ensurer just rewrote is left alone. It
// deletes nothing else: not a binding of the same name without the label, not the chart's own.
import { request } from 'undici';
import { z } from 'zod';
import { approverGroupsFor } from './approvals/config.ts';
import { LABEL_INJECT, LABEL_INJECTED } from '../../api/src/index.ts';
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
    /**
     * The webhook's own list of pods in the namespaces it binds (and there only), for the cleanup:
     * this ClusterRole bound to its ServiceAccount by a third RoleBinding made and removed with the others.
     */
    podReader: BindingTarget.extend({ serviceAccount: z.object({ name: objectName, namespace: objectName }).strict() }).optional(),
    /** Only these service accounts of the namespace (agents.serviceAccounts); empty: all of them. */
    serviceAccounts: z.array(z.string().min(1)).default([]),
    /** An ensured namespace is checked again after this long (a deleted binding comes back). */
    recheckSeconds: z.number().int().min(10).max(86_400).default(300),
    /**
     * How often the bindings of namespaces that stopped being agent namespaces (label removed, no
     * injected pod left) are removed; 0: never.
     */
    cleanupSeconds: z.number().int().min(0).max(86_400).default(60),
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
  if (rbac.podReader) out.push(binding(rbac.podReader, namespace, 'webhook', [{ kind: 'ServiceAccount', ...rbac.podReader.serviceAccount }]));
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

  /** The namespace's bindings were removed: the next injected pod there ensures them again at once. */
  forget(namespace: string): void {
    this.#ensured.delete(namespace);
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

  #call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    return apiCall(this.#access, this.#rbac.timeoutMs, method, path, body);
  }
}


/** A stored RoleBinding as listed. */
interface StoredBinding {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string> };
  roleRef?: { apiGroup?: string; kind?: string; name?: string };
}

/**
 * Which listed bindings are the webhook's own: its label, one of its two names with the roleRef
 * that name gets. A binding of that name someone else made (no label) or re-pointed is not ours.
 */
export function ownBindings(rbac: AgentRbacConfig, items: readonly StoredBinding[]): { namespace: string; name: string; uid: string; resourceVersion: string }[] {
  const targets = [rbac.sidecar, ...(rbac.approvers ? [rbac.approvers] : []), ...(rbac.podReader ? [rbac.podReader] : [])];
  const out: { namespace: string; name: string; uid: string; resourceVersion: string }[] = [];
  for (const b of items) {
    const m = b.metadata ?? {};
    if (m.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY || !m.namespace || !m.name || !m.uid || !m.resourceVersion) continue;
    const target = targets.find((t) => t.bindingName === m.name);
    if (!target || b.roleRef?.apiGroup !== RBAC_GROUP || b.roleRef.kind !== 'ClusterRole' || b.roleRef.name !== target.clusterRole) continue;
    out.push({ namespace: m.namespace, name: m.name, uid: m.uid, resourceVersion: m.resourceVersion });
  }
  return out;
}

/** Still an agent namespace: labelled for injection, or running a pod sluice injected (opted in alone). */
export function isAgentNamespace(labels: Readonly<Record<string, string>> | undefined, injectedPods: number): boolean {
  return labels?.[LABEL_INJECT] === 'true' || injectedPods > 0;
}

export interface CleanupReport {
  removed: string[];
  kept: { namespace: string; reason: string }[];
}

export interface CleanupLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}

export class AgentRbacCleaner {
  readonly #rbac: AgentRbacConfig;
  readonly #access: KubeAccess;
  readonly #ensurer: AgentRbacEnsurer | undefined;
  readonly #log: CleanupLog | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CleanupReport> | undefined;

  constructor(rbac: AgentRbacConfig, access: KubeAccess, ensurer?: AgentRbacEnsurer, log?: CleanupLog) {
    this.#rbac = rbac;
    this.#access = access;
    this.#ensurer = ensurer;
    this.#log = log;
  }

  start(): void {
    if (!this.#rbac.cleanupSeconds || this.#timer) return;
    this.#timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.#log?.warn({ code: 'SLUICE_WEBHOOK_AGENT_RBAC', err: (err as Error).message }, 'approvals RoleBindings cleanup failed; trying again later'));
    }, this.#rbac.cleanupSeconds * 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share it. Throws AgentRbacError when the bindings cannot be listed. */
  sweep(): Promise<CleanupReport> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweep(): Promise<CleanupReport> {
    const report: CleanupReport = { removed: [], kept: [] };
    const list = await apiCall(this.#access, this.#rbac.timeoutMs, 'GET', `/apis/rbac.authorization.k8s.io/v1/rolebindings?labelSelector=${encodeURIComponent(`${MANAGED_BY_LABEL}=${MANAGED_BY}`)}`);
    if (list.status !== 200) throw new AgentRbacError(`list RoleBindings: ${list.status} ${messageOf(list)}`.trim());
    const byNamespace = new Map<string, ReturnType<typeof ownBindings>>();
    for (const b of ownBindings(this.#rbac, (list.body.items ?? []) as StoredBinding[])) byNamespace.set(b.namespace, [...(byNamespace.get(b.namespace) ?? []), b]);
    for (const [namespace, bindings] of byNamespace) {
      try {
        const why = await this.#stillAgent(namespace);
        if (why) {
          report.kept.push({ namespace, reason: why });
          continue;
        }
        // The webhook's own pod-reader binding goes last: the check below still needs it.
        const reader = this.#rbac.podReader?.bindingName;
        for (const b of bindings.filter((x) => x.name !== reader)) await this.#delete(b, report);
        this.#ensurer?.forget(namespace);
        // A pod injected while we deleted: put the bindings back rather than leave it without approvals.
        if (await this.#stillAgent(namespace)) await this.#ensurer?.ensure(namespace);
        else for (const b of bindings.filter((x) => x.name === reader)) await this.#delete(b, report);
      } catch (err) {
        report.kept.push({ namespace, reason: `error: ${(err as Error).message}` });
        this.#log?.warn({ code: 'SLUICE_WEBHOOK_AGENT_RBAC', namespace, err: (err as Error).message }, 'approvals RoleBindings of a former agent namespace not removed; trying again later');
      }
    }
    if (report.removed.length) this.#log?.info({ removed: report.removed }, 'approvals RoleBindings removed from namespaces that are no longer agent namespaces');
    return report;
  }

  async #delete(b: { namespace: string; name: string; uid: string; resourceVersion: string }, report: CleanupReport): Promise<void> {
    const path = `/apis/rbac.authorization.k8s.io/v1/namespaces/${encodeURIComponent(b.namespace)}/rolebindings/${encodeURIComponent(b.name)}`;
    const res = await apiCall(this.#access, this.#rbac.timeoutMs, 'DELETE', path, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: b.uid, resourceVersion: b.resourceVersion } });
    // 404: gone already; 409: changed since listed (rewritten or replaced): not ours to judge now.
    if (res.status === 200 || res.status === 202) report.removed.push(`${b.namespace}/${b.name}`);
    else if (res.status !== 404 && res.status !== 409) throw new AgentRbacError(`DELETE ${path}: ${res.status} ${messageOf(res)}`.trim());
  }

  /** Why the namespace still needs its bindings ('' when it does not; a deleted namespace takes them with it). */
  async #stillAgent(namespace: string): Promise<string> {
    const ns = await apiCall(this.#access, this.#rbac.timeoutMs, 'GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    if (ns.status === 404) return 'namespace being deleted';
    if (ns.status !== 200) throw new AgentRbacError(`GET namespace ${namespace}: ${ns.status} ${messageOf(ns)}`.trim());
    const labels = (ns.body.metadata as { labels?: Record<string, string> } | undefined)?.labels;
    if (isAgentNamespace(labels, 0)) return `labelled ${LABEL_INJECT}=true`;
    const pods = await apiCall(this.#access, this.#rbac.timeoutMs, 'GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(`${LABEL_INJECTED}=true`)}&limit=1`);
    if (pods.status !== 200) throw new AgentRbacError(`list injected pods of ${namespace}: ${pods.status} ${messageOf(pods)}`.trim());
    const count = Array.isArray(pods.body.items) ? pods.body.items.length : 0;
    return isAgentNamespace(labels, count) ? 'pods sluice injected still run there' : '';
  }
}

const messageOf = (res: { body: Record<string, unknown> }): string => (typeof res.body.message === 'string' ? res.body.message : '');

async function apiCall(access: KubeAccess, timeout: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  let res;
  try {
    res = await request(`${access.server}${path}`, {
      method,
      dispatcher: access.dispatcher,
      headers: { authorization: `Bearer ${access.token()}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
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
