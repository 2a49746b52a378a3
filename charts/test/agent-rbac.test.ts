// Approvals RBAC for labelled namespaces the chart does not list (templates/agent-rbac.yaml): the
// sidecar's rules as a ClusterRole that is the same as the per-namespace Role, bound by nothing
// cluster-wide; the webhook told which ClusterRoles and binding names to ensure (its config parses
// with webhook/src/config.ts); and the webhook's own grant for it: create RoleBindings, get/update
// only the two names, bind only the two ClusterRoles.
import { describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { desiredRoleBindings } from '../../webhook/src/agent-rbac.ts';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { NAMESPACE, find, findAll, template } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
type Role = K8sObject & { rules: Rule[] };
type Binding = K8sObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace?: string }[] };

const webhookConfig = (objs: K8sObject[]) => parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));

describe('approvals RBAC the webhook ensures in labelled namespaces', () => {
  test('the sidecar ClusterRole holds exactly the rules of the per-namespace Role, extra rules included, and no ClusterRoleBinding binds it or the approver role', async () => {
    const extra = { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['deployer'] };
    for (const values of [{ agents: { namespaces: ['agents'] } }, { agents: { namespaces: ['agents'], extraSidecarRules: [extra] } }]) {
      const objs = await template(values);
      const cluster = find(objs, 'ClusterRole', 'sluice-sidecar') as Role;
      const role = objs.find((o) => o.kind === 'Role' && o.metadata.name === 'sluice-sidecar') as Role;
      expect(cluster.rules).toEqual(role.rules);
      expect(cluster.rules.slice(0, 2)).toEqual([
        { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
        { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch'] },
      ]);
      const clusterBound = (findAll(objs, 'ClusterRoleBinding') as Binding[]).map((b) => b.roleRef.name);
      expect(clusterBound).not.toContain('sluice-sidecar');
      expect(clusterBound).not.toContain('sluice-approver');
    }
  });

  test('the webhook may create RoleBindings, get/update/delete only the two it manages, bind only the two ClusterRoles, and read what its cleanup needs, nothing else', async () => {
    const objs = await template({});
    const role = find(objs, 'ClusterRole', 'sluice-webhook-agent-rbac') as Role;
    expect(role.rules).toEqual([
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], resourceNames: ['sluice-sidecar-injected', 'sluice-approvers-injected', 'sluice-webhook-injected'], verbs: ['get', 'update', 'delete'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: ['sluice-sidecar', 'sluice-approver', 'sluice-webhook-pod-reader'], verbs: ['bind'] },
      // The cleanup of namespaces that stopped being agent namespaces (webhook/src/agent-rbac.ts, AgentRbacCleaner).
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['list'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    ]);
    // Pods are listed only where the webhook binds this to itself, never cluster-wide.
    expect((find(objs, 'ClusterRole', 'sluice-webhook-pod-reader') as Role).rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]);
    expect(objs.filter((o) => o.kind === 'ClusterRoleBinding' && (o as Binding).roleRef.name === 'sluice-webhook-pod-reader')).toEqual([]);
    const binding = find(objs, 'ClusterRoleBinding', 'sluice-webhook-agent-rbac') as Binding;
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'sluice-webhook-agent-rbac' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: NAMESPACE }]);
  });

  test('the webhook is told those names, the approver groups per namespace and agents.serviceAccounts; what it would create refers to roles the chart renders', async () => {
    const objs = await template({ agents: { serviceAccounts: ['coder'] }, approvals: { approverGroups: ['sec'], namespaces: { payments: { approverGroups: ['payments-leads'] } } } });
    const config = webhookConfig(objs);
    expect(config.agentRbac).toEqual({
      sidecar: { clusterRole: 'sluice-sidecar', bindingName: 'sluice-sidecar-injected' },
      approvers: { clusterRole: 'sluice-approver', bindingName: 'sluice-approvers-injected' },
      podReader: { clusterRole: 'sluice-webhook-pod-reader', bindingName: 'sluice-webhook-injected', serviceAccount: { name: 'sluice-webhook', namespace: NAMESPACE } },
      serviceAccounts: ['coder'],
      recheckSeconds: 300,
      cleanupSeconds: 60,
      timeoutMs: 1500,
      admissionBudgetMs: 2000,
    });
    const granted = find(objs, 'ClusterRole', 'sluice-webhook-agent-rbac') as Role;
    const [sidecar, approvers, reader] = desiredRoleBindings(config.agentRbac!, config.approvals, 'payments');
    for (const b of [sidecar!, approvers!, reader!]) {
      expect(find(objs, 'ClusterRole', b.roleRef.name)).toBeDefined();
      expect(granted.rules[1]!.resourceNames).toContain(b.metadata.name);
      expect(granted.rules[2]!.resourceNames).toContain(b.roleRef.name);
    }
    expect(sidecar!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'coder', namespace: 'payments' }]);
    expect(approvers!.subjects.map((s) => s.name)).toEqual(['payments-leads']);
    expect(reader!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: NAMESPACE }]);
  });

  test('a renamed release renames all of it consistently', async () => {
    const objs = await template({ fullnameOverride: 'guard' });
    const config = webhookConfig(objs.map((o) => (o.kind === 'ConfigMap' && o.metadata.name === 'guard-webhook' ? { ...o, metadata: { ...o.metadata, name: 'sluice-webhook' } } : o)));
    expect(config.agentRbac?.sidecar).toEqual({ clusterRole: 'guard-sidecar', bindingName: 'guard-sidecar-injected' });
    expect(find(objs, 'ClusterRole', 'guard-sidecar')).toBeDefined();
    expect((find(objs, 'ClusterRole', 'guard-webhook-agent-rbac') as Role).rules[2]!.resourceNames).toEqual(['guard-sidecar', 'guard-approver', 'guard-webhook-pod-reader']);
  });
});
