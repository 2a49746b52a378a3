// The platform's knobs on the injected sidecar — pull secrets, extra env, a securityContext
// override — and what they may never do: the override only confines the sidecar further (no
// other UID than proxyUID, no root, no capability, no escalation, no Unconfined profile), extra
// env never shadows the webhook's SLUICE_* contract, and a pull secret is sluice's credential,
// which agent containers may not mount or read. Refusals happen at start-up, naming the field.
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { SchemaError } from '../../api/src/index.ts';
import { parseWebhookConfig } from '../src/config.ts';
import { guardPodCreate } from '../src/guard.ts';
import { planInjection } from '../src/inject.ts';
import { renderInjection } from '../src/render.ts';
import { alice, baseConfigInput, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

const { applyPatch } = fastJsonPatch;
const sidecar = (extra: Record<string, unknown>) => ({ sidecar: { image: 'i', ...extra } });

describe('sidecar securityContext override', () => {
  test.each([
    ['root', { runAsUser: 0 }, 'sidecar.securityContext.runAsUser', 'set proxyUID instead'],
    ['an agent UID', { runAsUser: 1000 }, 'sidecar.securityContext.runAsUser', 'never an agent UID'],
    ['the proxy UID spelled out', { runAsUser: 1337 }, 'sidecar.securityContext.runAsUser', 'set proxyUID instead'],
    ['another group', { runAsGroup: 0 }, 'sidecar.securityContext.runAsGroup', 'proxyUID'],
    ['runAsNonRoot false', { runAsNonRoot: false }, 'sidecar.securityContext.runAsNonRoot', 'non-root'],
    ['privileged', { privileged: true }, 'sidecar.securityContext.privileged', 'never runs privileged'],
    ['privilege escalation', { allowPrivilegeEscalation: true }, 'sidecar.securityContext.allowPrivilegeEscalation', 'escalation'],
    ['an added capability', { capabilities: { add: ['NET_ADMIN'] } }, 'sidecar.securityContext.capabilities', 'adds none'],
    ['a writable root filesystem', { readOnlyRootFilesystem: false }, 'sidecar.securityContext.readOnlyRootFilesystem', 'read-only'],
    ['an unmasked /proc', { procMount: 'Unmasked' }, 'sidecar.securityContext.procMount', '/proc'],
    ['Unconfined seccomp', { seccompProfile: { type: 'Unconfined' } }, 'sidecar.securityContext.seccompProfile', 'sidecar.securityContext.seccompProfile'],
    ['Unconfined AppArmor', { appArmorProfile: { type: 'Unconfined' } }, 'sidecar.securityContext.appArmorProfile', 'sidecar.securityContext.appArmorProfile'],
    ['Localhost without a profile', { seccompProfile: { type: 'Localhost' } }, 'sidecar.securityContext.seccompProfile', 'sidecar.securityContext.seccompProfile'],
    ['the super-privileged SELinux type', { seLinuxOptions: { type: 'spc_t' } }, 'sidecar.securityContext.seLinuxOptions.type', 'container_t'],
    ['an SELinux user', { seLinuxOptions: { user: 'system_u' } }, 'sidecar.securityContext.seLinuxOptions', 'user'],
  ])('refuses %s', (_what, securityContext, field, why) => {
    const parse = () => parseWebhookConfig(sidecar({ securityContext }));
    expect(parse).toThrow(SchemaError);
    expect(parse).toThrow(field);
    expect(parse).toThrow(why);
  });

  test('what it accepts only confines the sidecar further; the fixed fields stay', () => {
    const config = testConfig({
      sidecar: {
        ...baseConfigInput.sidecar,
        securityContext: {
          seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/sluice.json' },
          appArmorProfile: { type: 'RuntimeDefault' },
          seLinuxOptions: { level: 's0:c1,c2', type: 'container_t' },
        },
      },
    });
    expect(renderInjection(config).sidecar.securityContext).toEqual({
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/sluice.json' },
      appArmorProfile: { type: 'RuntimeDefault' },
      seLinuxOptions: { level: 's0:c1,c2', type: 'container_t' },
    });
    // The interception init container is not the sidecar: its context is unchanged.
    expect(renderInjection(config).initContainer.securityContext).toEqual(renderInjection(testConfig()).initContainer.securityContext);
  });
});

describe('sidecar extra env', () => {
  test.each([
    ['a SLUICE_* name', [{ name: 'SLUICE_PROXY_UID', value: '0' }], 'SLUICE_* variables are set by the webhook'],
    ['a lower-case sluice_ name', [{ name: 'sluice_policy_path', value: '/tmp' }], 'SLUICE_* variables are set by the webhook'],
    ['a duplicate', [{ name: 'TZ', value: 'UTC' }, { name: 'TZ', value: 'CET' }], 'extraEnv names must be unique'],
    ['a bad name', [{ name: 'A=B', value: 'x' }], 'sidecar.extraEnv.0.name'],
    ['a Secret reference (use mounts)', [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }], 'sidecar.extraEnv.0'],
  ])('refuses %s', (_what, extraEnv, why) => {
    expect(() => parseWebhookConfig(sidecar({ extraEnv }))).toThrow(why);
  });

  test('comes after the webhook’s own env, in order', () => {
    const env = renderInjection(testConfig({ sidecar: { ...baseConfigInput.sidecar, extraEnv: [{ name: 'TZ', value: 'UTC' }, { name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }] } })).sidecar.env!;
    expect(env.slice(-2)).toEqual([
      { name: 'TZ', value: 'UTC' },
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=384' },
    ]);
    expect(env.slice(0, -2)).toEqual(renderInjection(testConfig()).sidecar.env);
  });
});

describe('sidecar pull secrets', () => {
  const config = testConfig({ sidecar: { ...baseConfigInput.sidecar, imagePullSecrets: [{ name: 'sluice-pull' }] } });
  const ctx = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };
  const inject = (pod: V1Pod) => {
    const plan = planInjection(pod, ctx, config);
    if (plan.kind !== 'patch') throw new Error(`expected a patch, got ${plan.kind}`);
    return applyPatch(structuredClone(pod), structuredClone(plan.patch) as Operation[], true, false).newDocument;
  };

  test('a name that is not a Secret name is refused at start-up', () => {
    expect(() => parseWebhookConfig(sidecar({ imagePullSecrets: [{ name: 'Not_A_Name' }] }))).toThrow('sidecar.imagePullSecrets.0.name');
    expect(() => parseWebhookConfig(sidecar({ imagePullSecrets: ['sluice-pull'] }))).toThrow('sidecar.imagePullSecrets.0');
  });

  test('a name listed twice in the config is added once', () => {
    const twice = testConfig({ sidecar: { ...baseConfigInput.sidecar, imagePullSecrets: [{ name: 'sluice-pull' }, { name: 'mirror' }, { name: 'sluice-pull' }] } });
    const plan = planInjection(loadPod('plain-pod.yaml'), ctx, twice);
    expect(plan.kind === 'patch' && plan.patch.filter((op) => op.path.startsWith('/spec/imagePullSecrets'))).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'sluice-pull' }, { name: 'mirror' }] },
    ]);
  });

  test('an empty list of the pod’s own is appended to, never replaced', () => {
    const pod = loadPod('plain-pod.yaml');
    pod.spec!.imagePullSecrets = [];
    expect(inject(pod).spec!.imagePullSecrets).toEqual([{ name: 'sluice-pull' }]);
  });

  test('with no pull secrets configured the pod’s own stay exactly as they were', () => {
    const pod = loadPod('pull-secrets.yaml');
    const plan = planInjection(pod, ctx, testConfig());
    expect(plan.kind === 'patch' && plan.patch.filter((op) => op.path.startsWith('/spec/imagePullSecrets'))).toEqual([]);
  });

  test('an agent container may not mount the pull secret or read it from env; naming it as a pull secret is fine', () => {
    const pod = inject(loadPod('plain-pod.yaml'));
    expect(guardPodCreate(pod, ctx, config)).toEqual([]);
    const at = pod.spec!.volumes!.length;
    pod.spec!.volumes!.push({ name: 'registry', secret: { secretName: 'sluice-pull' } });
    const agent = pod.spec!.containers[0]!;
    agent.env!.push({ name: 'DOCKER_AUTH', valueFrom: { secretKeyRef: { name: 'sluice-pull', key: '.dockerconfigjson' } } });
    const envAt = agent.env!.length - 1;
    expect(guardPodCreate(pod, ctx, config).map((v) => `${v.rule} ${v.field}`)).toEqual(
      expect.arrayContaining([`guard.static_credential spec.volumes[${at}].secret.secretName`, `guard.static_credential spec.containers[0].env[${envAt}].valueFrom.secretKeyRef.name`]),
    );
  });
});
