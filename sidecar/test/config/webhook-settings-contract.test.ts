// The contract between the webhook and loadSidecarConfig, on a pod the real injector mutates: both
// sluice containers name a SLUICE_CONFIG_FILE inside a read-only mount of the settings ConfigMap
// (key sidecar.yaml), mounted non-optional with that key named so the kubelet does not start the pod
// without it (a missing ConfigMap never means defaults), no agent container mounts it, and the
// sidecar loads the file it finds there.
import { describe, expect, test } from '@jest/globals';
import fastJsonPatch from 'fast-json-patch';
import { planInjection } from '../../../webhook/src/inject.ts';
import { alice, loadPod, testConfig } from '../../../testkit/webhook/fixtures.ts';
import { loadInterceptionSettings } from '../../../lib/src/interception/settings.ts';
import { containerEnv, loadAsMounted, settingsMount } from '../../../testkit/config/settings-volume.ts';

const config = testConfig({ sidecar: { image: 'ghcr.io/sluice-dev/sluice:test', sidecarConfigMap: 'team-sidecar' } });
const input = loadPod('plain-pod.yaml');
const plan = planInjection(input, { namespace: 'agents', namespaceOptedIn: false, userInfo: alice }, config);
if (plan.kind !== 'patch') throw new Error(`expected a patch, got ${plan.kind}`);
const pod = fastJsonPatch.applyPatch(structuredClone(input), structuredClone(plan.patch) as fastJsonPatch.Operation[], true, false).newDocument;
const [init, sidecar] = pod.spec!.initContainers!;

describe('webhook ⇄ sidecar settings file', () => {
  test.each([
    ['sluice-proxy', sidecar!],
    ['sluice-init', init!],
  ])('%s reads sidecar.yaml from the required ConfigMap, mounted read-only', (name, c) => {
    expect(c.name).toBe(name);
    const { mount, key } = settingsMount(c);
    expect(mount.readOnly).toBe(true);
    expect(pod.spec!.volumes!.find((v) => v.name === mount.name)!.configMap).toEqual({ name: 'team-sidecar', defaultMode: 420, optional: false, items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] });
    expect(key).toBe('sidecar.yaml');
  });

  test('no agent container mounts the settings', () => {
    const { mount } = settingsMount(sidecar!);
    for (const c of pod.spec!.containers) expect((c.volumeMounts ?? []).map((m) => m.name)).not.toContain(mount.name);
  });

  test('the sidecar loads what the ConfigMap holds, and its defaults when there is none', () => {
    expect(loadAsMounted(sidecar!, undefined).approvals.maxWaitMs).toBe(600_000);
    expect(loadAsMounted(sidecar!, { 'other.yaml': 'approvals: { maxWaitMs: 1 }\n' }).approvals.maxWaitMs).toBe(600_000);
    expect(loadAsMounted(sidecar!, { 'sidecar.yaml': 'approvals: { maxWaitMs: 45000 }\n' }).approvals.maxWaitMs).toBe(45_000);
  });
});

describe('webhook ⇄ interception init container', () => {
  test('the env the webhook gives sluice-init is enough to render its rules (it has no policy or trust dir)', () => {
    const env: Record<string, string | undefined> = { ...containerEnv(init!), SLUICE_CONFIG_FILE: '/nonexistent/sidecar.yaml' };
    expect(env.SLUICE_POLICY_PATH).toBeUndefined();
    const settings = loadInterceptionSettings(env);
    expect(settings.proxyUID).toBe(Number(env.SLUICE_PROXY_UID));
    expect(settings.ports.transparent).toBe(Number(env.SLUICE_TRANSPARENT_PORT));
    expect(settings.dns.ipv4Cidr).toBe('198.18.0.0/15');
  });
});
