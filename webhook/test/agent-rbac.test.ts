// The approvals RoleBindings the webhook ensures in an injected pod's namespace: the objects
// themselves (golden file testdata/rbac/agent-rolebindings.yaml, REFRESH_GOLDEN=1 rewrites it) and what
// the webhook does with what the API server already stores. The create/update against a real API
// server is e2e/approvals/labelled-namespace.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { AgentRbacEnsurer, bindingAction, desiredRoleBindings } from '../src/agent-rbac.ts';
import { parseWebhookConfig } from '../src/config.ts';
import { registerWebhookMetrics } from '../src/metrics.ts';
import { createAdmissionApp } from '../src/server.ts';
import { TESTDATA, baseConfigInput, loadPod } from '../../testkit/webhook/fixtures.ts';
import { admissionReview } from './support/reviews.ts';

const config = parseWebhookConfig({
  ...baseConfigInput,
  approvals: { approverGroups: ['sluice-approvers'], namespaces: { payments: { approverGroups: ['payments-leads'] } } },
  agentRbac: { sidecar: { clusterRole: 'sluice-sidecar', bindingName: 'sluice-sidecar-injected' }, approvers: { clusterRole: 'sluice-approver', bindingName: 'sluice-approvers-injected' } },
});
const rbac = config.agentRbac!;

describe('desiredRoleBindings', () => {
  test('matches the golden file: the namespace group for the sidecar ClusterRole, the approver groups (per-namespace override) for the approver ClusterRole', () => {
    const text = stringify({ team: desiredRoleBindings(rbac, config.approvals, 'team-a'), payments: desiredRoleBindings(rbac, config.approvals, 'payments') });
    const file = join(TESTDATA, 'rbac', 'agent-rolebindings.yaml');
    if (process.env.REFRESH_GOLDEN) writeFileSync(file, text);
    expect(text).toBe(readFileSync(file, 'utf8'));
  });

  test('binds only the namespace it is asked for, never a cluster-wide group', () => {
    for (const b of desiredRoleBindings(rbac, config.approvals, 'team-a')) {
      expect(b.metadata.namespace).toBe('team-a');
      expect(b.roleRef.kind).toBe('ClusterRole');
      for (const s of b.subjects) expect(['system:serviceaccounts', 'system:authenticated', 'system:unauthenticated']).not.toContain(s.name);
    }
  });

  test('agents.serviceAccounts: only those accounts of the namespace, no group', () => {
    const [sidecar] = desiredRoleBindings({ ...rbac, serviceAccounts: ['coder'] }, config.approvals, 'team-a');
    expect(sidecar!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'coder', namespace: 'team-a' }]);
  });

  test('without approvers only the sidecar binding', () => {
    const { approvers: _, ...sidecarOnly } = rbac;
    expect(desiredRoleBindings(sidecarOnly, config.approvals, 'team-a').map((b) => b.metadata.name)).toEqual(['sluice-sidecar-injected']);
  });
});

describe('bindingAction', () => {
  const [desired] = desiredRoleBindings(rbac, config.approvals, 'team-a');

  test('creates a missing binding', () => {
    expect(bindingAction(undefined, desired!)).toEqual({ kind: 'create', body: desired });
  });

  test('leaves one that already says the same (subject order and apiGroup spelling aside)', () => {
    const stored = { metadata: { name: desired!.metadata.name, resourceVersion: '7' }, roleRef: desired!.roleRef, subjects: [...desired!.subjects] };
    expect(bindingAction(stored, desired!)).toEqual({ kind: 'none' });
  });

  test('sets widened subjects back, keeping the resourceVersion it read', () => {
    const stored = { metadata: { name: desired!.metadata.name, resourceVersion: '7', labels: { extra: 'x' } }, roleRef: desired!.roleRef, subjects: [...desired!.subjects, { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }] };
    const action = bindingAction(stored, desired!);
    expect(action.kind).toBe('update');
    if (action.kind !== 'update') return;
    expect(action.body.subjects).toEqual(desired!.subjects);
    expect(action.body.metadata.resourceVersion).toBe('7');
    expect(action.body.metadata.labels.extra).toBe('x');
  });

  test('refuses a binding of that name that refers to another role, naming it', () => {
    const stored = { metadata: { name: desired!.metadata.name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: desired!.subjects };
    const action = bindingAction(stored, desired!);
    expect(action).toEqual({ kind: 'conflict', message: expect.stringContaining('refers to ClusterRole cluster-admin') });
  });
});

describe('when the bindings cannot be ensured', () => {
  test('the pod is still injected, with an admission warning naming the namespace; a dry run never tries', async () => {
    // Nothing listens on port 1: every API call fails the way an unreachable API server does.
    const ensurer = new AgentRbacEnsurer(rbac, config.approvals, { server: 'https://127.0.0.1:1', token: () => 'unused', dispatcher: new Agent() });
    const app = createAdmissionApp({ config, metrics: registerWebhookMetrics(new Registry()), logger: pino({ level: 'silent' }), agentRbac: ensurer });
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const post = async (dryRun: boolean) => {
        const body = admissionReview(loadPod('plain-pod.yaml'), { namespace: 'team-a' });
        (body.request as { dryRun: boolean }).dryRun = dryRun;
        const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mutate/namespace`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        return ((await res.body.json()) as { response: { allowed: boolean; patch?: string; warnings?: string[] } }).response;
      };
      const real = await post(false);
      expect(real.allowed).toBe(true);
      expect(real.patch).toBeDefined();
      expect(real.warnings).toEqual([expect.stringMatching(/^sluice: the approvals RoleBindings of namespace team-a could not be ensured \(GET .*sluice-sidecar-injected: API server unreachable.*\); held requests of this pod are refused until they exist$/)]);
      const dry = await post(true);
      expect(dry.allowed).toBe(true);
      expect(dry.patch).toBe(real.patch);
      expect(dry.warnings).toBeUndefined();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

test('an API server that accepts and never answers holds the admission no longer than admissionBudgetMs', async () => {
  const silent = createTcpServer(() => undefined).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  try {
    const slow = { ...rbac, timeoutMs: 5_000, admissionBudgetMs: 300 };
    const ensurer = new AgentRbacEnsurer(slow, config.approvals, { server: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, token: () => 'unused', dispatcher: new Agent() });
    const started = performance.now();
    await expect(ensurer.ensureForAdmission('team-a')).rejects.toThrow('not done within 300 ms; still trying in the background');
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1_500);
    // The calls still running are the ones a second pod of the namespace waits on, not new ones.
    await expect(ensurer.ensure('team-a')).rejects.toThrow(/API server unreachable/);
  } finally {
    silent.close();
  }
}, 15_000);
