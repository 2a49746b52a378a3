// Follows one kind of object at one API path the way every sluice reader does: list (with the
// caller's label or field selector), remember the list's resourceVersion, watch from it with
// bookmarks and a server-side timeout, renew the watch from the last resourceVersion seen when the
// server ends it, re-list after 410 Gone (a resourceVersion too old: not a loss of contact), and
// back off (doubling, bounded, cut short by stop) after any other failure. It reports contact as
// health transitions and settles a first-read promise. The SluicePolicy watcher, the release bundle
// ConfigMap watcher and the ApprovalRequest watcher all run on it.
// It must never drop an event or reorder them: handlers run one at a time, in the order the server
// sent the events, a list's handler before any event of the watch that follows it, and a watch's
// last handler before the next list. It never runs two handlers at once, never reports healthy
// before a list's result has been handled, never writes to the API server and never retries on
// its own beyond this loop.
import type { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import type { KubeClient, WatchHandle } from '../../../lib/src/approvals/kube-client.ts';

export interface ListWatchOptions {
  /** The collection, e.g. /api/v1/namespaces/NS/configmaps. */
  path: string;
  /** Sent with both the list and the watch. */
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Server-side watch length; the watch is renewed from the last resourceVersion after it. */
  watchSeconds?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Report a failure before the first successful list as health(false) (contact starts unknown).
   * Off: contact starts lost, so only a loss after a successful list is reported.
   */
  reportFailureBeforeFirstList?: boolean;
}

export type ObjectEvent = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchHandlers<T> {
  /** Every object after a (re-)list, replacing what was known. A throw counts as a failed read. */
  list(items: readonly T[]): void | Promise<void>;
  /** One change, after the previous handler finished. A throw ends the watch and re-lists. */
  event(type: ObjectEvent, obj: T): void | Promise<void>;
  /** Contact gained (a list answered and was handled) or lost (a failure other than 410). */
  health(healthy: boolean, err?: ApprovalApiError): void;
  /** After health(false) for a failure, before the first-read promise rejects and the backoff. */
  failed?(err: ApprovalApiError): void | Promise<void>;
}

interface ObjectList<T> {
  metadata?: { resourceVersion?: string };
  items?: T[];
}

/** All an event's object needs for the loop: its resourceVersion, read defensively. */
interface Versioned {
  metadata?: { resourceVersion?: unknown } | null;
}

export class ListWatch<T> {
  readonly #rest: KubeClient;
  readonly #o: Required<Omit<ListWatchOptions, 'labelSelector' | 'fieldSelector'>> & Pick<ListWatchOptions, 'labelSelector' | 'fieldSelector'>;
  readonly #on: ListWatchHandlers<T>;
  #resourceVersion = '';
  #handle: WatchHandle | undefined;
  #stopped = false;
  #healthy: boolean | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #first: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void };

  constructor(rest: KubeClient, options: ListWatchOptions, handlers: ListWatchHandlers<T>) {
    this.#rest = rest;
    // An option given as undefined keeps its default.
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ListWatchOptions;
    this.#o = { watchSeconds: 300, minBackoffMs: 100, maxBackoffMs: 5_000, reportFailureBeforeFirstList: false, ...given };
    this.#on = handlers;
    this.#healthy = this.#o.reportFailureBeforeFirstList ? undefined : false;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody need wait for the first read; an unheard rejection must not end the process.
    promise.catch(() => undefined);
    this.#first = { promise, resolve, reject };
  }

  /** True from a handled list until the next failure. */
  get healthy(): boolean {
    return this.#healthy === true;
  }

  /**
   * Starts the loop (once); resolves after the first list was handled, rejects with the first
   * failure before that. Stays pending if stopped before either.
   */
  start(): Promise<void> {
    this.#loop ??= this.#run();
    return this.#first.promise;
  }

  /** Ends the watch and the loop; resolves once the last handler has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#handle?.abort();
    this.#wake?.();
    await this.#loop;
  }

  #setHealth(healthy: boolean, err?: ApprovalApiError): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    this.#on.health(healthy, err);
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped) return;
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
    const selectors = { labelSelector: this.#o.labelSelector, fieldSelector: this.#o.fieldSelector };
    let backoff = this.#o.minBackoffMs;
    let needList = true;
    // Events are handled in order, one at a time (a handler may be async: a bundle compiles).
    let chain = Promise.resolve();
    while (!this.#stopped) {
      try {
        if (needList) {
          const list = await this.#rest.call<ObjectList<T>>('GET', this.#o.path, { query: selectors });
          this.#resourceVersion = list.metadata?.resourceVersion ?? '';
          await this.#on.list(list.items ?? []);
          this.#setHealth(true);
          this.#first.resolve();
          needList = false;
        }
        let handlerFailed: { err: unknown } | undefined;
        this.#handle = await this.#rest.watch<T>(
          this.#o.path,
          { ...selectors, resourceVersion: this.#resourceVersion, timeoutSeconds: String(this.#o.watchSeconds), allowWatchBookmarks: 'true' },
          (event) => {
            const rv = (event.object as Versioned | null)?.metadata?.resourceVersion;
            if (typeof rv === 'string' && rv) this.#resourceVersion = rv;
            const type = event.type;
            if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
            chain = chain.then(async () => {
              // After a handler failed, later events are not applied on a view that missed one:
              // the re-list replaces it.
              if (handlerFailed !== undefined) return;
              try {
                await this.#on.event(type, event.object);
              } catch (err) {
                handlerFailed = { err };
                this.#handle?.abort();
              }
            });
          },
        );
        // stop() while the watch was connecting found no handle to abort: end it now, not at its timeout.
        if (this.#stopped) this.#handle.abort();
        backoff = this.#o.minBackoffMs;
        const watchedFrom = Date.now();
        const ended = await this.#handle.done;
        this.#handle = undefined;
        await chain;
        if (handlerFailed) throw handlerFailed.err;
        if (ended) throw ended;
        // A normal end (server-side timeout): renew from the last resourceVersion at once, unless
        // the server is closing watches as fast as it opens them (shutting down).
        if (Date.now() - watchedFrom < 1000) await this.#sleep(this.#o.minBackoffMs);
      } catch (e) {
        if (this.#stopped) break;
        const err = e as ApprovalApiError;
        needList = true;
        // 410 Gone: our resourceVersion is too old; re-list (not a loss of contact).
        if (err.status === 410) continue;
        this.#setHealth(false, err);
        await this.#on.failed?.(err);
        this.#first.reject(err);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, this.#o.maxBackoffMs);
      }
    }
    await chain;
  }
}
