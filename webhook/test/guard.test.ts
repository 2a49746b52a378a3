// The guard's rules one by one on an injected pod (the golden plain-pod output): each violation
// carries its rule code and the exact field, updates refuse only what they introduce, and
// exec/attach are judged by the target container alone.
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { ANNOTATION_CREATOR, ANNOTATION_KILL } from '../../api/src/index.ts';
import { guardConnect, guardPodCreate, guardPodUpdate } from '../src/guard.ts';
import type { GuardContext } from '../src/guard.ts';
import { planInjection } from '../src/inject.ts';
import { alice, loadPod, testConfig } from './support/fixtures.ts';

const { applyPatch } = fastJsonPatch;
const config = testConfig();
const ctx: GuardContext = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };
const injected = () => loadPod('plain-pod.patched.yaml');
const agent = (pod: V1Pod) => pod.spec!.containers[0]!;
const found = (pod: V1Pod) => guardPodCreate(pod, ctx, config).map((v) => `${v.rule} ${v.field}`);

describe('guard on CREATE', () => {
  test('the injector output passes', () => {
    expect(found(injected())).toEqual([]);
  });

  const cases: [string, (p: V1Pod) => void, string][] = [
    ['hostNetwork', (p) => (p.spec!.hostNetwork = true), 'guard.host_namespace spec.hostNetwork'],
    ['hostPID', (p) => (p.spec!.hostPID = true), 'guard.host_namespace spec.hostPID'],
    ['hostIPC', (p) => (p.spec!.hostIPC = true), 'guard.host_namespace spec.hostIPC'],
    ['shareProcessNamespace', (p) => (p.spec!.shareProcessNamespace = true), 'guard.share_process_namespace spec.shareProcessNamespace'],
    ['privileged', (p) => (agent(p).securityContext = { privileged: true }), 'guard.privileged spec.containers[0].securityContext.privileged'],
    ['SYS_ADMIN', (p) => (agent(p).securityContext = { capabilities: { add: ['CHOWN', 'SYS_ADMIN'] } }), 'guard.capability spec.containers[0].securityContext.capabilities.add[1]'],
    ['cap_net_raw spelled oddly', (p) => (agent(p).securityContext = { capabilities: { add: ['cap_net_raw'] } }), 'guard.capability spec.containers[0].securityContext.capabilities.add[0]'],
    ['proxy UID (container)', (p) => (agent(p).securityContext = { runAsUser: 1337 }), 'guard.proxy_uid spec.containers[0].securityContext.runAsUser'],
    ['proxy UID (pod)', (p) => (p.spec!.securityContext = { runAsUser: 1337 }), 'guard.proxy_uid spec.securityContext.runAsUser'],
    ['proxy GID (container)', (p) => (agent(p).securityContext = { runAsGroup: 1337 }), 'guard.proxy_gid spec.containers[0].securityContext.runAsGroup'],
    ['proxy GID (supplemental)', (p) => (p.spec!.securityContext = { supplementalGroups: [10, 1337] }), 'guard.proxy_gid spec.securityContext.supplementalGroups[1]'],
    ['proxy GID (fsGroup)', (p) => (p.spec!.securityContext = { fsGroup: 1337 }), 'guard.proxy_gid spec.securityContext.fsGroup'],
    ['static Secret volume', (p) => p.spec!.volumes!.push({ name: 'k', secret: { secretName: 'aws-static-keys' } }), 'guard.static_credential spec.volumes[7].secret.secretName'],
    ['static Secret by prefix in a projected volume', (p) => p.spec!.volumes!.push({ name: 'k', projected: { sources: [{ secret: { name: 'legacy-db' } }] } }), 'guard.static_credential spec.volumes[7].projected.sources[0].secret.name'],
    ['hostPath volume', (p) => p.spec!.volumes!.push({ name: 'node', hostPath: { path: '/var/lib/kubelet/pods' } }), 'guard.host_path spec.volumes[7].hostPath'],
    ['sidecar settings ConfigMap as a volume', (p) => p.spec!.volumes!.push({ name: 's', configMap: { name: 'sluice-sidecar' } }), 'guard.sluice_settings spec.volumes[7].configMap.name'],
    ['sidecar settings ConfigMap in a projected volume', (p) => p.spec!.volumes!.push({ name: 's', projected: { sources: [{ configMap: { name: 'sluice-sidecar' } }] } }), 'guard.sluice_settings spec.volumes[7].projected.sources[0].configMap.name'],
    ['sidecar settings ConfigMap in envFrom', (p) => (agent(p).envFrom = [{ configMapRef: { name: 'sluice-sidecar' } }]), 'guard.sluice_settings spec.containers[0].envFrom[0].configMapRef.name'],
    ['sidecar settings ConfigMap key in env', (p) => agent(p).env!.push({ name: 'N', valueFrom: { configMapKeyRef: { name: 'sluice-sidecar', key: 'sidecar.yaml' } } }), 'guard.sluice_settings spec.containers[0].env[15].valueFrom.configMapKeyRef.name'],
    ['static Secret in env', (p) => agent(p).env!.push({ name: 'K', valueFrom: { secretKeyRef: { name: 'aws-static-keys', key: 'id' } } }), 'guard.static_credential spec.containers[0].env[15].valueFrom.secretKeyRef.name'],
    ['sidecar volume in an agent', (p) => agent(p).volumeMounts!.push({ name: 'sluice-tokens', mountPath: '/x' }), 'guard.sluice_volume spec.containers[0].volumeMounts[1].name'],
    ['trust volume writable', (p) => (agent(p).volumeMounts![0]!.readOnly = false), 'guard.sluice_volume spec.containers[0].volumeMounts[0].name'],
    ['reserved container name', (p) => p.spec!.containers.push({ name: 'sluice-init', image: 'x' }), 'guard.reserved_name spec.containers[1].name'],
    ['sidecar image changed', (p) => (p.spec!.initContainers![1]!.image = 'evil:1'), 'guard.sidecar_modified spec.initContainers[1].image'],
    ['sidecar env changed', (p) => (p.spec!.initContainers![1]!.env![0]!.value = '0'), 'guard.sidecar_modified spec.initContainers[1].env[0].value'],
    ['sidecar volume changed', (p) => (p.spec!.volumes![0] = { name: 'sluice-trust', hostPath: { path: '/' } }), 'guard.reserved_name spec.volumes[0]'],
    ['sidecar config from another ConfigMap', (p) => (p.spec!.volumes!.find((v) => v.name === 'sluice-config')!.configMap!.name = 'attacker-settings'), 'guard.reserved_name spec.volumes[6]'],
    ['sidecar config file moved', (p) => (p.spec!.initContainers![1]!.env!.find((e) => e.name === 'SLUICE_CONFIG_FILE')!.value = '/tmp/x.yaml'), 'guard.sidecar_modified spec.initContainers[1].env[9].value'],
    ['sidecar settings mounted in an agent', (p) => agent(p).volumeMounts!.push({ name: 'sluice-config', mountPath: '/x', readOnly: true }), 'guard.sluice_volume spec.containers[0].volumeMounts[1].name'],
    ['creator forged', (p) => (p.metadata!.annotations![ANNOTATION_CREATOR] = '{"username":"root","groups":[]}'), `guard.creator_forged metadata.annotations[${ANNOTATION_CREATOR}]`],
    ['creator missing', (p) => delete p.metadata!.annotations![ANNOTATION_CREATOR], `guard.creator_missing metadata.annotations[${ANNOTATION_CREATOR}]`],
  ];
  test.each(cases)('%s', (_name, mutate, expected) => {
    const pod = injected();
    mutate(pod);
    expect(found(pod)).toContain(expected);
  });

  describe('Secrets and ConfigMaps mounted into the sidecar (sidecar.mounts)', () => {
    const mountConfig = testConfig({
      sidecar: {
        image: 'ghcr.io/sluice-dev/sluice:test',
        mounts: [
          { name: 'github-token', secret: 'github-app-token' },
          { name: 'roots', configMap: 'corp-roots' },
        ],
      },
    });
    const injectedWithMounts = () => {
      const pod = loadPod('plain-pod.yaml');
      const plan = planInjection(pod, { namespace: 'agents', namespaceOptedIn: false, userInfo: alice }, mountConfig);
      if (plan.kind !== 'patch') throw new Error(`expected a patch, got ${plan.kind}`);
      return structuredClone(applyPatch(pod, plan.patch as Operation[], false, false).newDocument);
    };
    const mountFound = (pod: V1Pod) => guardPodCreate(pod, ctx, mountConfig).map((v) => `${v.rule} ${v.field}`);
    const sidecarOf = (pod: V1Pod) => pod.spec!.initContainers!.find((c) => c.name === 'sluice-proxy')!;

    test('only the sidecar mounts them, read-only, and the injected pod passes', () => {
      const pod = injectedWithMounts();
      expect(sidecarOf(pod).volumeMounts).toEqual(
        expect.arrayContaining([
          { name: 'sluice-mount-github-token', mountPath: '/etc/sluice/mounts/github-token', readOnly: true },
          { name: 'sluice-mount-roots', mountPath: '/etc/sluice/mounts/roots', readOnly: true },
        ]),
      );
      expect(pod.spec!.volumes).toEqual(expect.arrayContaining([{ name: 'sluice-mount-github-token', secret: { secretName: 'github-app-token', defaultMode: 420, optional: false } }]));
      for (const c of pod.spec!.containers) expect((c.volumeMounts ?? []).map((m) => m.name)).not.toContain('sluice-mount-github-token');
      expect(mountFound(pod)).toEqual([]);
    });

    test('an agent may not mount the sidecar\'s volume', () => {
      const pod = injectedWithMounts();
      agent(pod).volumeMounts!.push({ name: 'sluice-mount-github-token', mountPath: '/x', readOnly: true });
      expect(mountFound(pod)).toContain('guard.sluice_volume spec.containers[0].volumeMounts[1].name');
    });

    test('a Secret the sidecar mounts is a static credential: agents may not mount it or read it from env', () => {
      const pod = injectedWithMounts();
      const at = pod.spec!.volumes!.length;
      pod.spec!.volumes!.push({ name: 'mine', secret: { secretName: 'github-app-token' } });
      agent(pod).env!.push({ name: 'GH', valueFrom: { secretKeyRef: { name: 'github-app-token', key: 'token' } } });
      const envAt = agent(pod).env!.length - 1;
      expect(mountFound(pod)).toEqual(
        expect.arrayContaining([`guard.static_credential spec.volumes[${at}].secret.secretName`, `guard.static_credential spec.containers[0].env[${envAt}].valueFrom.secretKeyRef.name`]),
      );
    });

    test('a mount pointed at another Secret, or a forged sluice-mount-* volume, is refused', () => {
      const swapped = injectedWithMounts();
      const i = swapped.spec!.volumes!.findIndex((v) => v.name === 'sluice-mount-github-token');
      swapped.spec!.volumes![i]!.secret!.secretName = 'someone-elses-token';
      expect(mountFound(swapped)).toContain(`guard.reserved_name spec.volumes[${i}]`);
      const forged = injectedWithMounts();
      forged.spec!.volumes!.push({ name: 'sluice-mount-extra', emptyDir: {} });
      expect(mountFound(forged)).toContain(`guard.reserved_name spec.volumes[${forged.spec!.volumes!.length - 1}]`);
    });
  });

  test('a labelled pod without the sidecar is refused (created around the injector)', () => {
    const pod = loadPod('plain-pod.yaml');
    expect(found(pod)).toEqual(expect.arrayContaining(['guard.sidecar_missing spec.initContainers', 'guard.sidecar_missing spec.volumes']));
  });

  test('an unselected pod is not guarded', () => {
    const pod = loadPod('not-selected.yaml');
    pod.spec!.hostNetwork = true;
    expect(guardPodCreate(pod, { ...ctx, namespace: 'default' }, config)).toEqual([]);
  });

  test('a pod carrying a sluice container is guarded even without the label', () => {
    const pod = injected();
    delete pod.metadata!.labels;
    delete pod.metadata!.annotations;
    pod.spec!.hostPID = true;
    expect(found(pod)).toContain('guard.host_namespace spec.hostPID');
  });

  test('root agents are refused only when config forbids them', () => {
    const strict = testConfig({ guard: { forbidRootAgents: true } });
    const pod = injected();
    expect(guardPodCreate(pod, ctx, config)).toEqual([]);
    expect(guardPodCreate(pod, ctx, strict).map((v) => `${v.rule} ${v.field}`)).toEqual(['guard.root_user spec.securityContext.runAsNonRoot']);
    pod.spec!.securityContext = { runAsNonRoot: true };
    expect(guardPodCreate(pod, ctx, strict)).toEqual([]);
    agent(pod).securityContext = { runAsUser: 0 };
    expect(guardPodCreate(pod, ctx, strict).map((v) => v.field)).toEqual(['spec.containers[0].securityContext.runAsUser']);
  });

  test('every message names the rule, the field and the container', () => {
    const pod = injected();
    agent(pod).securityContext = { privileged: true };
    const [v] = guardPodCreate(pod, ctx, config);
    expect(v?.message).toMatch(/container "agent" is privileged/);
  });
});

describe('guard on UPDATE', () => {
  const update = (mutate: (p: V1Pod) => void, old = injected()) => {
    const next = structuredClone(old);
    mutate(next);
    return guardPodUpdate(old, next, ctx, config).map((v) => `${v.rule} ${v.field}`);
  };

  test('the kill switch (an annotation) is allowed, even on a pod with an older violation', () => {
    const old = injected();
    old.spec!.volumes!.push({ name: 'k', secret: { secretName: 'aws-static-keys' } }); // predates the config
    expect(update((p) => (p.metadata!.annotations![ANNOTATION_KILL] = 'true'), old)).toEqual([]);
  });

  test("sluice's containers, volumes and the creator stamp cannot change", () => {
    expect(update((p) => (p.spec!.initContainers![1]!.image = 'evil:1'))).toEqual(['guard.sidecar_modified spec.initContainers']);
    expect(update((p) => p.spec!.initContainers!.splice(0, 2))).toContain('guard.sidecar_missing spec.initContainers');
    expect(update((p) => (p.spec!.volumes![3] = { name: 'sluice-podinfo', emptyDir: {} }))).toContain('guard.sidecar_modified spec.volumes');
    expect(update((p) => (p.spec!.volumes = p.spec!.volumes!.filter((v) => v.name !== 'sluice-config')))).toContain('guard.sidecar_modified spec.volumes');
    expect(update((p) => delete p.metadata!.annotations![ANNOTATION_CREATOR])).toEqual([`guard.creator_changed metadata.annotations[${ANNOTATION_CREATOR}]`]);
  });

  test('ephemeral containers: target, identity and mounts are checked; a plain one passes', () => {
    const add = (e: Record<string, unknown>) => update((p) => (p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', ...e }]));
    expect(add({ targetContainerName: 'agent' })).toEqual([]);
    expect(add({ targetContainerName: 'sluice-proxy' })).toEqual(['guard.ephemeral_target spec.ephemeralContainers[0].targetContainerName']);
    expect(add({ securityContext: { runAsUser: 1337 } })).toEqual(['guard.proxy_uid spec.ephemeralContainers[0].securityContext.runAsUser']);
    expect(add({ volumeMounts: [{ name: 'sluice-kube-api-access', mountPath: '/t' }] })).toEqual(['guard.sluice_volume spec.ephemeralContainers[0].volumeMounts[0].name']);
    expect(add({ name: 'sluice-proxy' })).toEqual(['guard.reserved_name spec.ephemeralContainers[0].name']);
  });

  test('updates of pods that are not sluice pods are not guarded', () => {
    const old = loadPod('not-selected.yaml');
    expect(update((p) => (p.spec!.containers[0]!.image = 'x'), old)).toEqual([]);
  });
});

describe('guard on exec/attach', () => {
  test('only sluice containers are refused', () => {
    expect(guardConnect('exec', { container: 'sluice-proxy' }).map((v) => v.rule)).toEqual(['guard.exec_sidecar']);
    expect(guardConnect('attach', { container: 'sluice-init' }).map((v) => v.field)).toEqual(['attach.container']);
    expect(guardConnect('exec', { container: 'agent' })).toEqual([]);
    expect(guardConnect('exec', {})).toEqual([]);
  });
});
