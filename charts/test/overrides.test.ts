// The chart's scheduling, security and pull-secret knobs, rendered by the real Helm: the webhook
// Deployment's topology spread (default over zones and nodes, overridable), affinity merged with
// the anti-affinity, pod and container securityContext (restricted by default, overridable,
// OpenShift's null-out), extra env, pull secrets from global and the chart; and for injected pods
// the sidecar's pull secrets, extra env and tighten-only securityContext, which reach the
// webhook's config and which the schema refuses to loosen.
import { describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { CHART, NAMESPACE, RELEASE, find, helm, template, templateError, valuesFile } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

interface PodSpec {
  imagePullSecrets?: { name: string }[];
  securityContext?: Record<string, unknown>;
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  containers: { env?: Record<string, unknown>[]; securityContext?: Record<string, unknown> }[];
}
type Deployment = K8sObject & { spec: { template: { spec: PodSpec } } };

const SELECTOR = { matchLabels: { 'app.kubernetes.io/name': 'sluice', 'app.kubernetes.io/instance': 'sluice', 'app.kubernetes.io/component': 'webhook' } };

async function webhookPod(values: unknown): Promise<PodSpec> {
  return (find(await template(values), 'Deployment', 'sluice-webhook') as Deployment).spec.template.spec;
}

async function webhookConfig(values: unknown) {
  const cm = find(await template(values), 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
  return parseWebhookConfig(parseYaml(cm.data['config.yaml']));
}

describe('webhook Deployment', () => {
  test('by default the two replicas spread over zones and nodes without blocking scheduling, each rollout counted apart', async () => {
    const pod = await webhookPod({});
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: SELECTOR, matchLabelKeys: ['pod-template-hash'] },
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: SELECTOR, matchLabelKeys: ['pod-template-hash'] },
    ]);
  });

  test('the spread is overridable: a hard zone spread, an entry with its own selector kept as it is, or none', async () => {
    const own = { maxSkew: 2, topologyKey: 'rack', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { tier: 'control' } } };
    const pod = await webhookPod({ webhook: { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }, own] } });
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: SELECTOR, matchLabelKeys: ['pod-template-hash'] },
      own,
    ]);
    expect((await webhookPod({ webhook: { topologySpreadConstraints: [] } })).topologySpreadConstraints).toBeUndefined();
  });

  test('affinity is merged with the anti-affinity of webhook.antiAffinity, unless it brings its own', async () => {
    const nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' }] }] } };
    const merged = (await webhookPod({ webhook: { affinity: { nodeAffinity } } })).affinity!;
    expect(merged.nodeAffinity).toEqual(nodeAffinity);
    expect(merged.podAntiAffinity).toEqual({ preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: SELECTOR } }] });
    const hard = (await webhookPod({ webhook: { antiAffinity: 'hard' } })).affinity!;
    expect(hard).toEqual({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: SELECTOR }] } });
    const podAntiAffinity = { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'topology.kubernetes.io/zone', labelSelector: SELECTOR }] };
    expect((await webhookPod({ webhook: { affinity: { podAntiAffinity } } })).affinity).toEqual({ podAntiAffinity });
  });

  test('restricted Pod Security by default; overridable, and OpenShift can leave the UIDs to its SCC', async () => {
    const pod = await webhookPod({});
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const openshift = await webhookPod({ webhook: { podSecurityContext: { runAsUser: null, runAsGroup: null, fsGroup: null } } });
    expect(openshift.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const localhost = await webhookPod({ webhook: { securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'webhook.json' } } } });
    expect(localhost.containers[0]!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'Localhost', localhostProfile: 'webhook.json' } });
  });

  test('extra env, with values or references', async () => {
    const env = [
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=200' },
      { name: 'HTTPS_PROXY', valueFrom: { configMapKeyRef: { name: 'proxy', key: 'url' } } },
    ];
    expect((await webhookPod({})).containers[0]!.env).toBeUndefined();
    expect((await webhookPod({ webhook: { extraEnv: env } })).containers[0]!.env).toEqual(env);
  });

  test('pull secrets: global.imagePullSecrets (names or {name}, as parent charts share them) then imagePullSecrets, each once', async () => {
    expect((await webhookPod({})).imagePullSecrets).toBeUndefined();
    const pod = await webhookPod({ global: { imagePullSecrets: ['corp', { name: 'shared' }] }, imagePullSecrets: [{ name: 'shared' }, { name: 'own' }] });
    expect(pod.imagePullSecrets).toEqual([{ name: 'corp' }, { name: 'shared' }, { name: 'own' }]);
    // The webhook's pull secrets are not the agents': injected pods get only sidecar.imagePullSecrets.
    expect((await webhookConfig({ global: { imagePullSecrets: ['corp'] }, imagePullSecrets: [{ name: 'own' }] })).sidecar.imagePullSecrets).toEqual([]);
  });
});

describe('injected sidecar', () => {
  test('pull secrets, extra env and a tighter securityContext reach the webhook config', async () => {
    const c = await webhookConfig({
      sidecar: {
        imagePullSecrets: [{ name: 'sluice-pull' }],
        extraEnv: [{ name: 'TZ', value: 'UTC' }],
        securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/sluice.json' }, seLinuxOptions: { level: 's0:c1,c2' } },
      },
    });
    expect(c.sidecar.imagePullSecrets).toEqual([{ name: 'sluice-pull' }]);
    expect(c.sidecar.extraEnv).toEqual([{ name: 'TZ', value: 'UTC' }]);
    expect(c.sidecar.securityContext).toEqual({ seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/sluice.json' }, seLinuxOptions: { level: 's0:c1,c2' } });
    const defaults = await webhookConfig({});
    expect([defaults.sidecar.imagePullSecrets, defaults.sidecar.extraEnv, defaults.sidecar.securityContext]).toEqual([[], [], {}]);
  });

  test('the install notes say the pull secret must exist in each agent namespace, and how', async () => {
    const res = await helm(['install', RELEASE, CHART, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile({ agents: { namespaces: ['agents', 'team-b'] }, sidecar: { imagePullSecrets: [{ name: 'sluice-pull' }] } })]);
    expect(res.code).toBe(0);
    const notes = res.stdout.slice(res.stdout.indexOf('\nNOTES:\n'));
    expect(notes).toContain("Injected pods pull the sidecar with sluice-pull: the kubelet reads pull secrets from the pod's own\nnamespace, so each must exist in every agent namespace");
    expect(notes).toContain('kubectl -n agents create secret docker-registry sluice-pull --docker-server=');
    expect(notes).toContain('kubectl -n team-b create secret docker-registry sluice-pull --docker-server=');
    const none = await helm(['install', RELEASE, CHART, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile({})]);
    expect(none.stdout).not.toContain('pull the sidecar with');
  });

  test.each([
    ['runAsUser 0', { securityContext: { runAsUser: 0 } }, /securityContext\/runAsUser/],
    ['an agent UID', { securityContext: { runAsUser: 1000 } }, /securityContext\/runAsUser/],
    ['runAsNonRoot false', { securityContext: { runAsNonRoot: false } }, /securityContext\/runAsNonRoot/],
    ['an added capability', { securityContext: { capabilities: { add: ['NET_ADMIN'] } } }, /securityContext\/capabilities/],
    ['privileged', { securityContext: { privileged: true } }, /securityContext\/privileged/],
    ['privilege escalation', { securityContext: { allowPrivilegeEscalation: true } }, /securityContext\/allowPrivilegeEscalation/],
    ['a writable root filesystem', { securityContext: { readOnlyRootFilesystem: false } }, /securityContext\/readOnlyRootFilesystem/],
    ['Unconfined seccomp', { securityContext: { seccompProfile: { type: 'Unconfined' } } }, /securityContext\/seccompProfile/],
    ['the spc_t SELinux type', { securityContext: { seLinuxOptions: { type: 'spc_t' } } }, /seLinuxOptions\/type/],
    ['an env var from a Secret (use mounts)', { extraEnv: [{ name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }, /extraEnv\/0/],
    ['a pull secret that is not a Secret name', { imagePullSecrets: [{ name: 'Not_A_Name' }] }, /imagePullSecrets\/0\/name/],
  ])('helm refuses a sidecar %s', async (_what, sidecar, field) => {
    const err = await templateError({ sidecar });
    expect(err).toMatch(/schema/);
    expect(err).toMatch(field);
  });

  test('helm refuses a sidecar SLUICE_* variable (the webhook’s contract with the sidecar), in any case', async () => {
    for (const name of ['SLUICE_PROXY_UID', 'sluice_policy_path']) {
      expect(await templateError({ sidecar: { extraEnv: [{ name, value: '0' }] } })).toMatch(`sidecar.extraEnv: ${name}: SLUICE_* variables are set by the webhook`);
    }
  });
});
