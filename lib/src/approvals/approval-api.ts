// ApprovalRequest operations over the Kubernetes API (sluice.io/v1alpha1): the sidecar creates,
// lists, watches, expires and (once finished) deletes its own pod's requests; `kubectl sluice` reads and decides them.
// Status changes are JSON merge patches carrying the resourceVersion they were based on, so a
// decision never silently overwrites another one (the API server answers 409 instead).
import { APPROVAL_API_VERSION, APPROVAL_PLURAL, GROUP } from '../../../api/src/index.ts';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import type { KubeClient, WatchEvent, WatchHandle } from './kube-client.ts';

export interface ApprovalList {
  items: ApprovalRequest[];
  resourceVersion: string;
}

const MERGE_PATCH = 'application/merge-patch+json';

export function approvalsPath(namespace?: string, name?: string, sub?: 'status'): string {
  const base = namespace ? `/apis/${APPROVAL_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${APPROVAL_PLURAL}` : `/apis/${APPROVAL_API_VERSION}/${APPROVAL_PLURAL}`;
  return `${base}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}

export class ApprovalApi {
  readonly rest: KubeClient;

  constructor(rest: KubeClient) {
    this.rest = rest;
  }

  create(namespace: string, obj: ApprovalRequest): Promise<ApprovalRequest> {
    return this.rest.call<ApprovalRequest>('POST', approvalsPath(namespace), { body: obj });
  }

  get(namespace: string, name: string): Promise<ApprovalRequest> {
    return this.rest.call<ApprovalRequest>('GET', approvalsPath(namespace, name));
  }

  /** One namespace, or every namespace when `namespace` is undefined. */
  async list(namespace: string | undefined, labelSelector?: string): Promise<ApprovalList> {
    const list = await this.rest.call<{ items: ApprovalRequest[]; metadata?: { resourceVersion?: string } }>('GET', approvalsPath(namespace), { query: { labelSelector } });
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /** Merges `status` into the object's status; with `resourceVersion`, only if nobody changed it since. */
  patchStatus(namespace: string, name: string, status: Partial<ApprovalRequestStatus>, resourceVersion?: string): Promise<ApprovalRequest> {
    const body = { ...(resourceVersion ? { metadata: { resourceVersion } } : {}), status };
    return this.rest.call<ApprovalRequest>('PATCH', approvalsPath(namespace, name, 'status'), { body, contentType: MERGE_PATCH });
  }

  /** Deletes the object only if it is still the version judged (uid and resourceVersion preconditions). */
  delete(namespace: string, name: string, preconditions: { uid?: string | undefined; resourceVersion?: string | undefined } = {}): Promise<unknown> {
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: Object.fromEntries(Object.entries(preconditions).filter(([, v]) => v !== undefined)) };
    return this.rest.call<unknown>('DELETE', approvalsPath(namespace, name), { body });
  }

  watch(namespace: string | undefined, query: { labelSelector?: string | undefined; resourceVersion?: string | undefined; timeoutSeconds?: number }, onEvent: (e: WatchEvent<ApprovalRequest>) => void): Promise<WatchHandle> {
    return this.rest.watch<ApprovalRequest>(
      approvalsPath(namespace),
      {
        labelSelector: query.labelSelector,
        resourceVersion: query.resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(query.timeoutSeconds ?? 300),
      },
      onEvent,
    );
  }
}

export { GROUP };
