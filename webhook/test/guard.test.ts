// The guard's rules one by one on an injected pod (the golden plain-pod output): each violation
// carries its rule code and the exact field, updates refuse only what they introduce, and
// exec/attach are judged by the target container alone.
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { ANNOTATION_CREATOR, ANNOTATION_KILL, ANNOTATION_STATUS, LABEL_INJECT, LABEL_INJECTED } from '../../api/src/index.ts';
import { guardConnect, guardPodCreate, guardPodUpdate, guardPortForward, guardProxy, normaliseCapability } from '../src/guard.ts';
import type { GuardContext } from '../src/guard.ts';
import { planInjection } from '../src/inject.ts';
import { alice, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

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

  test('root agents: refused while they hold SETUID/SETGID; refused outright when config forbids them', () => {
    const strict = testConfig({ guard: { forbidRootAgents: true } });
    const pod = injected();
    expect(guardPodCreate(pod, ctx, config)).toEqual([]);
    expect(guardPodCreate(pod, ctx, strict)).toEqual([]);
    agent(pod).securityContext = { runAsUser: 0, allowPrivilegeEscalation: false };
    expect(found(pod)).toEqual(['guard.uid_change spec.containers[0].securityContext.capabilities.drop']);
    agent(pod).securityContext = { runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ['setuid', ' CAP_SETGID'] } };
    expect(found(pod)).toEqual([]);
    agent(pod).securityContext = { runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
    expect(found(pod)).toEqual([]);
    expect(guardPodCreate(pod, ctx, strict).map((v) => `${v.rule} ${v.field}`)).toEqual(['guard.root_user spec.containers[0].securityContext.runAsUser']);
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
    const plain = { allowPrivilegeEscalation: false };
    const add = (e: Record<string, unknown>) => update((p) => (p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: plain, ...e }]));
    expect(add({ targetContainerName: 'agent' })).toEqual([]);
    expect(add({ targetContainerName: 'sluice-proxy' })).toEqual(['guard.ephemeral_target spec.ephemeralContainers[0].targetContainerName']);
    expect(add({ securityContext: { ...plain, runAsUser: 1337 } })).toEqual(['guard.proxy_uid spec.ephemeralContainers[0].securityContext.runAsUser']);
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

describe('no way into the UID exemption (agent, init and ephemeral containers alike)', () => {
  const cases: [string, (p: V1Pod) => void, string][] = [
    ['no explicit UID: the image USER could be 1337', (p) => delete p.spec!.securityContext!.runAsUser, 'guard.uid_unset spec.containers[0].securityContext.runAsUser'],
    ['runAsNonRoot alone does not say which UID', (p) => (p.spec!.securityContext = { runAsNonRoot: true }), 'guard.uid_unset spec.containers[0].securityContext.runAsUser'],
    ['privilege escalation left on', (p) => (agent(p).securityContext!.allowPrivilegeEscalation = true), 'guard.privilege_escalation spec.containers[0].securityContext.allowPrivilegeEscalation'],
    ['privilege escalation unset', (p) => delete agent(p).securityContext!.allowPrivilegeEscalation, 'guard.privilege_escalation spec.containers[0].securityContext.allowPrivilegeEscalation'],
    ['SETUID added', (p) => (agent(p).securityContext!.capabilities = { add: ['SETUID'] }), 'guard.uid_change spec.containers[0].securityContext.capabilities.add[0]'],
    ['setgid added, lower case with CAP_', (p) => (agent(p).securityContext!.capabilities = { add: ['cap_setgid'] }), 'guard.uid_change spec.containers[0].securityContext.capabilities.add[0]'],
    ['ALL added', (p) => (agent(p).securityContext!.capabilities = { add: ['all'] }), 'guard.uid_change spec.containers[0].securityContext.capabilities.add[0]'],
    ['root keeping its capabilities', (p) => (p.spec!.securityContext!.runAsUser = 0), 'guard.uid_change spec.containers[0].securityContext.capabilities.drop'],
    [
      'a user init container without an explicit UID',
      (p) => {
        delete p.spec!.securityContext!.runAsUser;
        agent(p).securityContext!.runAsUser = 1000;
        p.spec!.initContainers!.push({ name: 'setup', image: 'busybox', securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true } });
      },
      'guard.uid_unset spec.initContainers[2].securityContext.runAsUser',
    ],
  ];
  test.each(cases)('%s', (_name, mutate, expected) => {
    const pod = injected();
    mutate(pod);
    expect(found(pod)).toContain(expected);
  });

  test('capability names are normalised: spaces, case and the CAP_ prefix', () => {
    expect([' NET_ADMIN', 'net_admin', 'CAP_NET_ADMIN', '\tcap_net_admin ', 'Cap_Net_Admin'].map(normaliseCapability)).toEqual(Array(5).fill('NET_ADMIN'));
    for (const cap of [' NET_ADMIN', 'CAP_NET_RAW ', 'cap_sys_admin', ' all ']) {
      const pod = injected();
      agent(pod).securityContext!.capabilities = { add: [cap] };
      expect(found(pod)).toContain('guard.capability spec.containers[0].securityContext.capabilities.add[0]');
    }
  });

  test('an ephemeral container inheriting a grandfathered pod-level UID is still judged on its own', () => {
    const old = injected();
    old.spec!.securityContext = { runAsNonRoot: true }; // a pod from before explicit UIDs were required
    const next = structuredClone(old);
    next.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: { allowPrivilegeEscalation: false } }];
    expect(guardPodUpdate(old, next, ctx, config).map((v) => `${v.rule} ${v.field}`)).toEqual(['guard.uid_unset spec.ephemeralContainers[0].securityContext.runAsUser']);
    const asProxy = structuredClone(old);
    asProxy.spec!.securityContext = { runAsUser: 1337 };
    const withDebug = structuredClone(asProxy);
    withDebug.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: { allowPrivilegeEscalation: false } }];
    expect(guardPodUpdate(asProxy, withDebug, ctx, config).map((v) => `${v.rule} ${v.field}`)).toContain('guard.proxy_uid spec.securityContext.runAsUser');
  });
});

describe('reserved ports and legacy token Secrets', () => {
  const cases: [string, (p: V1Pod) => void, string][] = [
    ['the admin port number', (p) => (agent(p).ports = [{ containerPort: 15090 }]), 'guard.reserved_port spec.containers[0].ports[0].containerPort'],
    ['the explicit proxy port number', (p) => (agent(p).ports = [{ name: 'http', containerPort: 15080 }]), 'guard.reserved_port spec.containers[0].ports[0].containerPort'],
    ['the metrics port name the PodMonitor scrapes', (p) => (agent(p).ports = [{ name: 'sluice-admin', containerPort: 9000 }]), 'guard.reserved_port spec.containers[0].ports[0].name'],
    ['a sluice-like port name', (p) => (agent(p).ports = [{ name: 'sluice-metrics', containerPort: 9000 }]), 'guard.reserved_port spec.containers[0].ports[0].name'],
    ['a host port of the sidecar', (p) => (agent(p).ports = [{ containerPort: 8080, hostPort: 15001 }]), 'guard.reserved_port spec.containers[0].ports[0].hostPort'],
    ['a legacy token Secret volume', (p) => p.spec!.volumes!.push({ name: 't', secret: { secretName: 'default-token-x7k2q' } }), 'guard.legacy_token_secret spec.volumes[7].secret.secretName'],
    ['a legacy token Secret projected', (p) => p.spec!.volumes!.push({ name: 't', projected: { sources: [{ secret: { name: 'builder-token-4bz9p' } }] } }), 'guard.legacy_token_secret spec.volumes[7].projected.sources[0].secret.name'],
    ['a legacy token in env', (p) => agent(p).env!.push({ name: 'T', valueFrom: { secretKeyRef: { name: 'default-token-x7k2q', key: 'token' } } }), 'guard.legacy_token_secret spec.containers[0].env[15].valueFrom.secretKeyRef.name'],
    ['a legacy token in envFrom', (p) => (agent(p).envFrom = [{ secretRef: { name: 'default-token-x7k2q' } }]), 'guard.legacy_token_secret spec.containers[0].envFrom[0].secretRef.name'],
  ];
  test.each(cases)('%s', (_name, mutate, expected) => {
    const pod = injected();
    mutate(pod);
    expect(found(pod)).toContain(expected);
  });

  test('ordinary ports and Secret names pass', () => {
    const pod = injected();
    agent(pod).ports = [{ name: 'http', containerPort: 8080 }];
    pod.spec!.volumes!.push({ name: 'gh', secret: { secretName: 'github-token-prod1' } });
    expect(found(pod)).toEqual([]);
  });
});

describe('injected means injected', () => {
  const update = (mutate: (p: V1Pod) => void, old = injected(), context = ctx) => {
    const next = structuredClone(old);
    mutate(next);
    return guardPodUpdate(old, next, context, config).map((v) => `${v.rule} ${v.field}`);
  };

  test('the injector output carries the markers; a pod without them is refused at creation', () => {
    expect(injected().metadata!.labels![LABEL_INJECTED]).toBe('true');
    const pod = injected();
    delete pod.metadata!.labels![LABEL_INJECTED];
    expect(found(pod)).toEqual([`guard.injection_marker metadata.labels[${LABEL_INJECTED}]`]);
  });

  test.each<[string, (p: V1Pod) => void, string]>([
    ['inject label flipped to "false"', (p) => (p.metadata!.labels![LABEL_INJECT] = 'false'), `metadata.labels[${LABEL_INJECT}]`],
    ['inject label removed', (p) => delete p.metadata!.labels![LABEL_INJECT], `metadata.labels[${LABEL_INJECT}]`],
    ['injected label removed', (p) => delete p.metadata!.labels![LABEL_INJECTED], `metadata.labels[${LABEL_INJECTED}]`],
    ['injected label changed', (p) => (p.metadata!.labels![LABEL_INJECTED] = 'no'), `metadata.labels[${LABEL_INJECTED}]`],
    ['status annotation removed', (p) => delete p.metadata!.annotations![ANNOTATION_STATUS], `metadata.annotations[${ANNOTATION_STATUS}]`],
  ])('%s is refused', (_name, mutate, field) => {
    expect(update(mutate)).toContain(`guard.injection_marker ${field}`);
  });

  test('after a label flip (in the same update) an ephemeral container is still judged', () => {
    const found = update((p) => {
      p.metadata!.labels![LABEL_INJECT] = 'false';
      p.spec!.ephemeralContainers = [{ name: 'x', image: 'busybox', securityContext: { privileged: true, capabilities: { add: ['NET_ADMIN'] } } }];
    });
    expect(found).toEqual(
      expect.arrayContaining([
        `guard.injection_marker metadata.labels[${LABEL_INJECT}]`,
        'guard.privileged spec.ephemeralContainers[0].securityContext.privileged',
        'guard.capability spec.ephemeralContainers[0].securityContext.capabilities.add[0]',
      ]),
    );
  });

  test('a pod sluice did not inject may not claim the markers', () => {
    const old = loadPod('not-selected.yaml');
    expect(update((p) => (p.metadata!.labels = { ...p.metadata!.labels, [LABEL_INJECTED]: 'true' }), old)).toEqual([`guard.injection_marker metadata.labels[${LABEL_INJECTED}]`]);
  });

  test('pods/resize may not touch sluice containers; agent containers may be resized', () => {
    const next = injected();
    next.spec!.initContainers![1]!.resources = { requests: { cpu: '1m', memory: '1Mi' }, limits: { memory: '2Mi' } };
    expect(guardPodUpdate(injected(), next, ctx, config, 'resize').map((v) => `${v.rule} ${v.field}`)).toEqual(['guard.sidecar_resize spec.initContainers']);
    const agentResized = injected();
    agent(agentResized).resources = { requests: { cpu: '2', memory: '2Gi' } };
    expect(guardPodUpdate(injected(), agentResized, ctx, config, 'resize')).toEqual([]);
  });
});

describe('the kill switch', () => {
  const agentSa = { username: 'system:serviceaccount:agents:coder', groups: ['system:serviceaccounts', 'system:serviceaccounts:agents', 'system:authenticated'] };
  const approver = { username: 'bob@example.com', groups: ['sluice-approvers', 'system:authenticated'] };
  const as = (userInfo: GuardContext['userInfo'], before: string | undefined, after: string | undefined) => {
    const old = injected();
    if (before !== undefined) old.metadata!.annotations![ANNOTATION_KILL] = before;
    const next = structuredClone(old);
    if (after === undefined) delete next.metadata!.annotations![ANNOTATION_KILL];
    else next.metadata!.annotations![ANNOTATION_KILL] = after;
    return guardPodUpdate(old, next, { ...ctx, userInfo }, config).map((v) => v.rule);
  };

  test('anyone may engage it; only approvers may clear or change it', () => {
    expect(as(agentSa, undefined, 'true')).toEqual([]);
    expect(as(alice, undefined, 'true')).toEqual([]);
    expect(as(agentSa, 'true', undefined)).toEqual(['guard.kill_switch']);
    expect(as(agentSa, 'true', 'false')).toEqual(['guard.kill_switch']);
    expect(as(alice, 'true', undefined)).toEqual(['guard.kill_switch']);
    expect(as(agentSa, undefined, 'false')).toEqual(['guard.kill_switch']);
    expect(as(approver, 'true', undefined)).toEqual([]);
    expect(as(approver, 'true', 'false')).toEqual([]);
  });

  test('per-namespace approver groups decide', () => {
    const perNs = testConfig({ approvals: { namespaces: { agents: { approverGroups: ['team-leads'] } } } });
    const old = injected();
    old.metadata!.annotations![ANNOTATION_KILL] = 'true';
    const next = structuredClone(old);
    delete next.metadata!.annotations![ANNOTATION_KILL];
    expect(guardPodUpdate(old, next, { ...ctx, userInfo: approver }, perNs).map((v) => v.rule)).toEqual(['guard.kill_switch']);
    expect(guardPodUpdate(old, next, { ...ctx, userInfo: { username: 'lead', groups: ['team-leads'] } }, perNs)).toEqual([]);
  });
});

describe('port-forward and proxy to the sidecar', () => {
  const approver = { username: 'bob@example.com', groups: ['sluice-approvers'] };
  test('proxy: the sidecar ports by number or sluice name are refused, others pass', () => {
    for (const name of ['agent:15090', 'https:agent:15080', 'agent:15001', 'agent:15053', 'agent:sluice-admin']) expect(guardProxy(name, config).map((v) => v.rule)).toEqual(['guard.port_forward']);
    for (const name of ['agent', 'agent:8080', 'http:agent:http']) expect(guardProxy(name, config)).toEqual([]);
  });

  test('portforward: a sidecar port named in the options is refused anywhere; in an opted-in namespace only approvers may forward', () => {
    const plainNs = { ...ctx, namespaceOptedIn: false };
    const agentNs = { ...ctx, namespaceOptedIn: true };
    expect(guardPortForward({ ports: [8080, 15090] }, plainNs, config).map((v) => v.field)).toEqual(['portforward.ports[1]']);
    expect(guardPortForward({ ports: [8080] }, plainNs, config)).toEqual([]);
    expect(guardPortForward({}, agentNs, config).map((v) => v.rule)).toEqual(['guard.port_forward']);
    expect(guardPortForward({ ports: [8080] }, agentNs, config).map((v) => v.rule)).toEqual(['guard.port_forward']);
    expect(guardPortForward({}, { ...agentNs, userInfo: approver }, config)).toEqual([]);
  });

  test('portforward elsewhere: to a pod the webhook read and found injected, only approvers', () => {
    const plainNs = { ...ctx, namespaceOptedIn: false };
    expect(guardPortForward({}, plainNs, config, true).map((v) => v.field)).toEqual(['portforward']);
    expect(guardPortForward({}, plainNs, config, false)).toEqual([]);
    expect(guardPortForward({}, { ...plainNs, userInfo: approver }, config, true)).toEqual([]);
  });
});
