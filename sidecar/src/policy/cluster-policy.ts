// Follows the cluster's SluicePolicy objects for this sidecar's namespace: list, then watch from
// that resourceVersion (re-watch when the server ends a watch, re-list after 410 Gone or an error;
// the loop is kube/list-watch.ts), and re-read the namespace's labels for namespaceSelector bindings now and then. Every change
// recomputes the effective policy with api/'s effectiveSluicePolicy and reports it only when it
// changed; an invalid object that could apply is reported as rejected and the caller keeps its last
// good policy. Reads with the pod's own ServiceAccount token (the sidecar's only: agents never get
// it), which the chart lets list and watch sluicepolicies and get namespaces, nothing more.
// It never decides anything and never writes to the API server.
import { SLUICE_POLICY_PATH, effectiveSluicePolicy } from '../../../api/src/index.ts';
import type { EffectiveSluicePolicy, SluicePolicy, SluicePolicyProblem } from '../../../api/src/index.ts';
import type { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import type { KubeClient } from '../../../lib/src/approvals/kube-client.ts';
import { ListWatch } from '../kube/list-watch.ts';

export interface ClusterPolicyEvents {
  /** A new effective policy (its revision differs from the last one applied). */
  applied(policy: EffectiveSluicePolicy, ignored: readonly SluicePolicyProblem[]): void;
  /** The objects give no valid policy for this namespace; reported once per distinct set of problems. */
  rejected(problems: readonly SluicePolicyProblem[]): void;
  /** Lost contact with the API server (first failure) or regained it (successful list). */
  health(healthy: boolean, err?: ApprovalApiError): void;
}

export interface ClusterPolicyOptions {
  namespace: string;
  watchSeconds?: number;
  /** How often the namespace's labels are re-read (namespaceSelector bindings). */
  namespaceResyncMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface NamespaceObject {
  metadata?: { labels?: Record<string, string> };
}

export class ClusterPolicyWatcher {
  readonly #rest: KubeClient;
  readonly #o: Required<ClusterPolicyOptions>;
  readonly #events: ClusterPolicyEvents;
  readonly #objects = new Map<string, SluicePolicy>();
  readonly #loop: ListWatch<SluicePolicy>;
  #labels: Record<string, string> = {};
  #stopped = false;
  #resync: NodeJS.Timeout | undefined;
  #lastRevision = '';
  #lastProblems = '';
  #current: EffectiveSluicePolicy | undefined;
  readonly #waiters: ((p: EffectiveSluicePolicy) => void)[] = [];

  constructor(rest: KubeClient, options: ClusterPolicyOptions, events: ClusterPolicyEvents) {
    this.#rest = rest;
    this.#o = { watchSeconds: 300, namespaceResyncMs: 30_000, minBackoffMs: 100, maxBackoffMs: 5_000, ...options };
    this.#events = events;
    const { watchSeconds, minBackoffMs, maxBackoffMs } = this.#o;
    this.#loop = new ListWatch<SluicePolicy>(
      rest,
      { path: SLUICE_POLICY_PATH, watchSeconds, minBackoffMs, maxBackoffMs },
      {
        list: async (items) => {
          // The namespace's labels with every (re-)list, before the objects are replaced.
          this.#labels = await this.#readLabels();
          this.#objects.clear();
          for (const item of items) this.#objects.set(item.metadata.name ?? '', item);
          this.#recompute();
        },
        event: (type, obj) => {
          const name = obj.metadata?.name ?? '';
          if (type === 'DELETED') this.#objects.delete(name);
          else this.#objects.set(name, obj);
          this.#recompute();
        },
        health: (healthy, err) => this.#events.health(healthy, err),
      },
    );
  }

  get healthy(): boolean {
    return this.#loop.healthy;
  }

  /** The last good effective policy, if any. */
  get current(): EffectiveSluicePolicy | undefined {
    return this.#current;
  }

  start(): void {
    if (this.#resync) return;
    void this.#loop.start();
    this.#resync = setInterval(() => void this.#refreshLabels(), this.#o.namespaceResyncMs);
    this.#resync.unref();
  }

  /** Resolves with the first good effective policy (at once when there is one). */
  firstPolicy(): Promise<EffectiveSluicePolicy> {
    if (this.#current) return Promise.resolve(this.#current);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#resync) clearInterval(this.#resync);
    await this.#loop.stop();
  }

  #recompute(): void {
    const result = effectiveSluicePolicy([...this.#objects.values()], { name: this.#o.namespace, labels: this.#labels });
    if (!result.ok) {
      const key = JSON.stringify(result.problems);
      if (key !== this.#lastProblems) {
        this.#lastProblems = key;
        this.#events.rejected(result.problems);
      }
      return;
    }
    this.#lastProblems = '';
    if (result.policy.revision === this.#lastRevision) return;
    this.#lastRevision = result.policy.revision;
    this.#current = result.policy;
    this.#events.applied(result.policy, result.ignored);
    for (const w of this.#waiters.splice(0)) w(result.policy);
  }

  async #readLabels(): Promise<Record<string, string>> {
    const ns = await this.#rest.call<NamespaceObject>('GET', `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}`);
    return ns.metadata?.labels ?? {};
  }

  async #refreshLabels(): Promise<void> {
    if (this.#stopped || !this.#loop.healthy) return;
    try {
      const labels = await this.#readLabels();
      if (JSON.stringify(labels) !== JSON.stringify(this.#labels)) {
        this.#labels = labels;
        this.#recompute();
      }
    } catch {
      // The watch loop reports contact; the labels stay as last read.
    }
  }
}
