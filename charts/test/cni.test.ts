// interception.mode in the chart (docs/cni.md): init renders no node component; cni renders the
// sluice node agent — a privileged DaemonSet in the release namespace only, on the host network
// and PID namespace, reading pods and the one sidecar settings ConfigMap name — tells the webhook
// the mode, and says so in NOTES.
import { describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { CHART, NAMESPACE, RELEASE, find, findAll, helm, template, valuesFile } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

interface Container {
  name: string;
  command: string[];
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
}
type DaemonSet = K8sObject & { spec: { template: { spec: { hostNetwork: boolean; hostPID: boolean; serviceAccountName: string; tolerations: unknown[]; containers: Container[]; volumes: { name: string; hostPath?: { path: string } }[] } } } };
type Role = K8sObject & { rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[] };

const webhookMode = (objs: K8sObject[]) => {
  const cm = findAll(objs, 'ConfigMap').find((c) => c.metadata.name === 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
  return (parseYaml(cm.data['config.yaml']) as { interception: { mode: string } }).interception.mode;
};

describe('interception.mode', () => {
  test('init (default): no node agent, and the webhook is told init', async () => {
    const objs = await template({});
    expect(findAll(objs, 'DaemonSet')).toEqual([]);
    expect(objs.filter((o) => o.metadata.name.endsWith('-cni'))).toEqual([]);
    expect(webhookMode(objs)).toBe('init');
  });

  test('cni: a privileged DaemonSet in the release namespace only, on the host network and PID namespace, with the node paths', async () => {
    const objs = await template({ interception: { mode: 'cni', cni: { binDir: '/home/kubernetes/bin', exemptNamespaces: ['monitoring'] } } });
    expect(webhookMode(objs)).toBe('cni');
    const ds = find(objs, 'DaemonSet') as DaemonSet;
    expect(ds.metadata.namespace).toBe(NAMESPACE);
    expect(objs.filter((o) => o.kind === 'DaemonSet' || o.kind === 'ServiceAccount').every((o) => o.metadata.namespace === NAMESPACE)).toBe(true);
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const c = pod.containers[0]!;
    expect(c.securityContext).toMatchObject({ privileged: true, runAsUser: 0 });
    expect(c.command.slice(0, 2)).toEqual(['node', '/app/cni/src/main.ts']);
    expect(c.command).toContain('--host-cni-bin-dir=/home/kubernetes/bin');
    expect(c.command).toContain(`--exempt-namespaces=kube-system,${NAMESPACE},monitoring`);
    expect(pod.volumes.find((v) => v.name === 'cni-bin')!.hostPath!.path).toBe('/home/kubernetes/bin');
    expect(pod.volumes.find((v) => v.name === 'cni-conf')!.hostPath!.path).toBe('/etc/cni/net.d');
  });

  test('cni RBAC: get on pods and on the sidecar settings ConfigMap by name, nothing else, bound to the agent only', async () => {
    const objs = await template({ interception: { mode: 'cni' } });
    const role = findAll(objs, 'ClusterRole').find((r) => r.metadata.name === 'sluice-cni') as Role;
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['sluice-sidecar'], verbs: ['get'] },
    ]);
    const binding = findAll(objs, 'ClusterRoleBinding').find((b) => b.metadata.name === 'sluice-cni') as K8sObject & { subjects: unknown[] };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice-cni', namespace: NAMESPACE }]);
  });

  test('an unknown mode is refused by the schema', async () => {
    const res = await helm(['template', RELEASE, CHART, '-n', NAMESPACE, '-f', valuesFile({ interception: { mode: 'ebpf' } })]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/interception/);
  });

  test('NOTES name the mode and what it needs from the cluster', async () => {
    const notes = async (values: unknown) => {
      const res = await helm(['install', RELEASE, CHART, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile(values)]);
      return res.stdout.slice(res.stdout.indexOf('\nNOTES:\n'));
    };
    expect(await notes({})).toMatch(/Interception: {4}mode init\n.*must allow\n.*Pod Security "privileged"/);
    expect(await notes({ interception: { mode: 'cni' } })).toMatch(/Interception: {4}mode cni\n.*DaemonSet sluice-cni, privileged, in sluice-system/);
  });
});
