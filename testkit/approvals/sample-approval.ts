// One ApprovalRequest for tests of every component that reads one (sidecar, webhook, CLI): a held
// `git push` of coder-0 in agents, created by alice, asking for a session scope.
import type { ApprovalRequest, ApprovalRequestSpec, ApprovalRequestStatus } from '../../api/src/index.ts';

export const SAMPLE_SPEC: ApprovalRequestSpec = {
  pod: { namespace: 'agents', name: 'coder-0', uid: 'pod-uid-1' },
  serviceAccount: 'coder',
  session: 's-1',
  creator: { username: 'alice@example.com', groups: ['developers'] },
  request: {
    method: 'POST',
    host: 'github.com',
    path: '/acme/app.git/git-receive-pack',
    summary: 'git push acme/app refs/heads/main on github.com',
    facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0'.repeat(40), new: '1'.repeat(40) }] } },
  },
  code: 'git.push_requires_approval',
  reason: 'push needs approval',
  requestedScope: 'session',
  requestedTTL: '30m',
  fingerprint: 'f',
  expiresAt: '2030-01-01T12:10:00Z',
};

export function sampleApproval(o: { name?: string; spec?: Partial<ApprovalRequestSpec>; status?: Partial<ApprovalRequestStatus>; createdAt?: string } = {}): ApprovalRequest {
  return {
    apiVersion: 'sluice.io/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: o.name ?? 'coder-0-3fa9c1', namespace: 'agents', ...(o.createdAt ? { creationTimestamp: o.createdAt } : {}) },
    spec: { ...SAMPLE_SPEC, ...o.spec },
    ...(o.status ? { status: { state: 'Approved', ...o.status } } : {}),
  };
}
