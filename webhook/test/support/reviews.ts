// AdmissionReview requests as the API server sends them, for tests and the benchmark.
import { randomUUID } from 'node:crypto';
import type { UserInfo } from '../../src/creator.ts';

export interface ReviewOptions {
  operation?: 'CREATE' | 'UPDATE' | 'CONNECT' | 'DELETE';
  subResource?: string;
  namespace?: string;
  userInfo?: UserInfo;
  oldObject?: unknown;
  uid?: string;
}

export function admissionReview(object: unknown, o: ReviewOptions = {}): Record<string, unknown> {
  const sub = o.subResource;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? randomUUID(),
      kind: { group: '', version: 'v1', kind: sub === 'exec' ? 'PodExecOptions' : sub === 'attach' ? 'PodAttachOptions' : 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      ...(sub ? { subResource: sub } : {}),
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: (object as { metadata?: { name?: string } } | undefined)?.metadata?.name ?? '',
      namespace: o.namespace ?? 'agents',
      operation: o.operation ?? 'CREATE',
      userInfo: o.userInfo ?? { username: 'alice@example.com', uid: 'oidc-7f3a', groups: ['developers', 'system:authenticated'] },
      object,
      oldObject: o.oldObject ?? null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
