// Follows the cluster's SluicePolicy objects for this sidecar's namespace: list, then watch from
// that resourceVersion (re-watch when the server ends a watch, re-list after 410 Gone or an error),
// and re-read the namespace's labels for namespaceSelector bindings now and then. Every change
// recomputes the effective policy with api/'s effectiveSluicePolicy and reports it only when it
// changed; an invalid object that could apply is reported as rejected and the caller keeps its last
// good policy. Reads with the pod's own ServiceAccount token (the sidecar's only: agents never get
// it), which the chart lets list and watch sluicepolicies and get namespaces, nothing more.
// It never decides anything and never writes to the API server.
import { SLUICE_POLICY_PATH, effectiveSluicePolicy } from '../../../api/src/index.ts';
import type { EffectiveSluicePolicy, SluicePolicy, SluicePolicyProblem } from '../../../api/src/index.ts';
import type { ApprovalApiError } from '../approvals/errors.ts';
import type { KubeRest, WatchHandle } from '../approvals/kube-rest.ts';

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

interface ObjectList {
  metadata?: { resourceVersion?: string };
  items?: SluicePolicy[];
}

interface NamespaceObject {
  metadata?: { labels?: Record<string, string> };
}

export class ClusterPolicyWatcher {
  readonly #rest: KubeRest;
  readonly #o: Required<ClusterPolicyOptions>;
  readonly #events: ClusterPolicyEvents;
  readonly #objects = new Map<string, SluicePolicy>();
  #labels: Record<string, string> = {};
  #resourceVersion = '';
  #handle: WatchHandle | undefined;
  #stopped = false;
  #healthy = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #resync: NodeJS.Timeout | undefined;
  #lastRevision = '';
  #lastProblems = '';
  #current: EffectiveSluicePolicy | undefined;
  readonly #waiters: ((p: EffectiveSluicePolicy) => void)[] = [];

  constructor(rest: KubeRest, options: ClusterPolicyOptions, events: ClusterPolicyEvents) {
    this.#rest = rest;
    this.#o = { watchSeconds: 300, namespaceResyncMs: 30_000, minBackoffMs: 100, maxBackoffMs: 5_000, ...options };
    this.#events = events;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** The last good effective policy, if any. */
  get current(): EffectiveSluicePolicy | undefined {
    return this.#current;
  }

  start(): void {
    this.#loop ??= this.#run();
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
    this.#handle?.abort();
    this.#wake?.();
    await this.#loop;
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
    if (this.#stopped || !this.#healthy) return;
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

  #setHealth(healthy: boolean, err?: ApprovalApiError): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    this.#events.health(healthy, err);
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    let backoff = this.#o.minBackoffMs;
    let needList = true;
    while (!this.#stopped) {
      try {
        if (needList) {
          this.#labels = await this.#readLabels();
          const list = await this.#rest.call<ObjectList>('GET', SLUICE_POLICY_PATH);
          this.#resourceVersion = list.metadata?.resourceVersion ?? '';
          this.#objects.clear();
          for (const item of list.items ?? []) this.#objects.set(item.metadata.name ?? '', item);
          this.#setHealth(true);
          this.#recompute();
          needList = false;
        }
        this.#handle = await this.#rest.watch<SluicePolicy>(SLUICE_POLICY_PATH, { resourceVersion: this.#resourceVersion, timeoutSeconds: String(this.#o.watchSeconds), allowWatchBookmarks: 'true' }, (event) => {
          const rv = event.object.metadata?.resourceVersion;
          if (typeof rv === 'string' && rv) this.#resourceVersion = rv;
          const name = event.object.metadata?.name ?? '';
          if (event.type === 'ADDED' || event.type === 'MODIFIED') this.#objects.set(name, event.object);
          else if (event.type === 'DELETED') this.#objects.delete(name);
          else return;
          this.#recompute();
        });
        backoff = this.#o.minBackoffMs;
        const watchedFrom = Date.now();
        const ended = await this.#handle.done;
        this.#handle = undefined;
        if (ended) throw ended;
        if (Date.now() - watchedFrom < 1000) await this.#sleep(this.#o.minBackoffMs);
      } catch (e) {
        if (this.#stopped) break;
        const err = e as ApprovalApiError;
        needList = true;
        if (err.status === 410) continue;
        this.#setHealth(false, err);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, this.#o.maxBackoffMs);
      }
    }
  }
}
