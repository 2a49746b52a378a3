// Keeps the sidecar's view of its own pod's ApprovalRequests current: list, then watch from that
// resourceVersion, re-watching when the server ends a watch and re-listing after 410 Gone or an
// error. It reports health so holds can fail closed: `healthy` is false from the first failed call
// until a list succeeds again. It must never report a decision it did not read from the API server.
import type { ApprovalRequest } from '../../../api/src/index.ts';
import type { ApprovalApi } from './approval-api.ts';
import type { ApprovalApiError } from './errors.ts';
import type { WatchHandle } from './kube-rest.ts';

export interface WatcherListener {
  /** Every object after a (re-)list, replacing what was known. */
  reset(objs: readonly ApprovalRequest[]): void;
  upsert(obj: ApprovalRequest): void;
  remove(obj: ApprovalRequest): void;
  /** Lost contact (first failure) or regained it (successful list). */
  health(healthy: boolean, err?: ApprovalApiError): void;
}

export interface WatcherOptions {
  namespace: string;
  labelSelector: string;
  /** Server-side watch length; the watch is renewed from the last resourceVersion after it. */
  watchSeconds?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class ApprovalWatcher {
  readonly #api: ApprovalApi;
  readonly #o: Required<WatcherOptions>;
  readonly #listener: WatcherListener;
  #handle: WatchHandle | undefined;
  #stopped = false;
  #healthy = false;
  #resourceVersion = '';
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #firstSync: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void };

  constructor(api: ApprovalApi, options: WatcherOptions, listener: WatcherListener) {
    this.#api = api;
    this.#o = { watchSeconds: 300, minBackoffMs: 100, maxBackoffMs: 5_000, ...options };
    this.#listener = listener;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    this.#firstSync = { promise, resolve, reject };
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** Starts the loop; resolves after the first successful list (or rejects with its error). */
  start(): Promise<void> {
    this.#loop ??= this.#run();
    return this.#firstSync.promise;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#handle?.abort();
    this.#wake?.();
    await this.#loop;
  }

  #setHealth(healthy: boolean, err?: ApprovalApiError): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    this.#listener.health(healthy, err);
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
          const list = await this.#api.list(this.#o.namespace, this.#o.labelSelector);
          this.#resourceVersion = list.resourceVersion;
          this.#listener.reset(list.items);
          this.#setHealth(true);
          this.#firstSync.resolve();
          needList = false;
        }
        this.#handle = await this.#api.watch(
          this.#o.namespace,
          { labelSelector: this.#o.labelSelector, resourceVersion: this.#resourceVersion, timeoutSeconds: this.#o.watchSeconds },
          (event) => {
            const rv = event.object.metadata?.resourceVersion;
            if (typeof rv === 'string' && rv) this.#resourceVersion = rv;
            if (event.type === 'ADDED' || event.type === 'MODIFIED') this.#listener.upsert(event.object);
            else if (event.type === 'DELETED') this.#listener.remove(event.object);
          },
        );
        backoff = this.#o.minBackoffMs;
        const watchedFrom = Date.now();
        const ended = await this.#handle.done;
        this.#handle = undefined;
        if (ended) throw ended;
        // A normal end (server-side timeout): renew from the last resourceVersion at once, unless
        // the server is closing watches as fast as it opens them (shutting down).
        if (Date.now() - watchedFrom < 1000) await this.#sleep(this.#o.minBackoffMs);
      } catch (e) {
        if (this.#stopped) break;
        const err = e as ApprovalApiError;
        // 410 Gone: our resourceVersion is too old; re-list (not a loss of contact).
        needList = true;
        if (err.status === 410) continue;
        this.#setHealth(false, err);
        this.#firstSync.reject(err);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, this.#o.maxBackoffMs);
      }
    }
  }
}
