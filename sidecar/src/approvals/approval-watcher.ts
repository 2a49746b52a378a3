// Keeps the sidecar's view of its own pod's ApprovalRequests current: list, then watch from that
// resourceVersion, re-watching when the server ends a watch and re-listing after 410 Gone or an
// error (the loop is kube/list-watch.ts). It reports health so holds can fail closed: `healthy` is
// false from the first failed call until a list succeeds again (and its objects were taken in).
// It must never report a decision it did not read from the API server.
import type { ApprovalRequest } from '../../../api/src/index.ts';
import { ListWatch } from '../kube/list-watch.ts';
import { approvalsPath } from '../../../lib/src/approvals/approval-api.ts';
import type { ApprovalApi } from '../../../lib/src/approvals/approval-api.ts';
import type { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';

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
  readonly #loop: ListWatch<ApprovalRequest>;

  constructor(api: ApprovalApi, options: WatcherOptions, listener: WatcherListener) {
    const { namespace, ...rest } = options;
    this.#loop = new ListWatch<ApprovalRequest>(api.rest, { path: approvalsPath(namespace), ...rest }, {
      list: (items) => listener.reset(items),
      event: (type, obj) => (type === 'DELETED' ? listener.remove(obj) : listener.upsert(obj)),
      health: (healthy, err) => listener.health(healthy, err),
    });
  }

  get healthy(): boolean {
    return this.#loop.healthy;
  }

  /** Starts the loop; resolves after the first successful list (or rejects with its error). */
  start(): Promise<void> {
    return this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
