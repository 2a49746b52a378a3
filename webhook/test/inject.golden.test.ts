// Golden files, as Istio's injector has them: testdata/<case>.yaml is the pod the API server hands
// the webhook, <case>.patched.yaml the pod after sluice's JSONPatch. Every <case>.yaml is a case (a
// new case is its file; OPTIONS below only for one that needs another config or namespace); an
// expected file without its input, or options naming no file, fails. REFRESH_GOLDEN=1 rewrites the
// expected files. Each case is also injected a second time to prove idempotency, and every
// operation is checked to stay inside what sluice owns.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { stringify } from 'yaml';
import type { WebhookConfig } from '../src/config.ts';
import { planInjection } from '../src/inject.ts';
import type { JsonPatchOp } from '../src/json-patch.ts';
import { guardPodCreate } from '../src/guard.ts';
import { TESTDATA, alice, baseConfigInput, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

interface GoldenCase {
  name: string;
  namespaceOptedIn?: boolean;
  config?: WebhookConfig;
  /** The pod is not selected: the plan must be a skip and the output equal the input. */
  skipped?: boolean;
}

const customConfig = testConfig({
  injectorVersion: 'test-custom',
  sidecar: {
    image: 'registry.internal/sluice:2.0',
    imagePullPolicy: 'Always',
    proxyUID: 2042,
    ports: { transparent: 16001, proxy: 16080, dns: 16053, admin: 16090 },
    resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    policyConfigMap: 'team-policy',
    sidecarConfigMap: 'team-sidecar',
    spoolSizeLimit: '1Gi',
    mounts: [
      { name: 'github-token', secret: 'github-app-token', items: [{ key: 'token', path: 'token' }] },
      { name: 'extra-roots', configMap: 'corp-roots', optional: true },
    ],
  },
});

/** No policy ConfigMap: the sidecar runs the library built into its image (no volume, no SLUICE_POLICY_PATH). */
const builtinPolicyConfig = testConfig({ sidecar: { ...baseConfigInput.sidecar, policyConfigMap: null } });

/** Sidecar pull secrets (corp-registry is also the pod's own in pull-secrets.yaml), extra env, a tighter securityContext. */
const sidecarOverridesConfig = testConfig({
  sidecar: {
    ...baseConfigInput.sidecar,
    imagePullSecrets: [{ name: 'corp-registry' }, { name: 'sluice-pull' }],
    extraEnv: [
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=384' },
      { name: 'TZ', value: 'UTC' },
    ],
    securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/sluice.json' }, seLinuxOptions: { level: 's0:c123,c456' } },
  },
});

/**
 * Settings and organisation from the cluster's SluicePolicy objects (the chart's choice): no settings
 * ConfigMap volume or mount in either container, SLUICE_POLICY_SOURCE=cluster for the sidecar, and
 * the fake-IP ranges as env for both.
 */
const clusterSettingsConfig = testConfig({
  sidecar: { ...baseConfigInput.sidecar, policyConfigMap: null, settingsSource: 'cluster', fakeIp: { ipv4Cidr: '100.80.0.0/16', ipv6Cidr: null } },
});

/** CNI mode (webhook/src/cni-mode.ts): sluice-init is an unprivileged check; the node installs the rules. */
const cniConfig = testConfig({ interception: { mode: 'cni' } });

/** Cases that need another config, an opted-in namespace or expect a skip; any other case is its file alone. */
const OPTIONS: Readonly<Record<string, Omit<GoldenCase, 'name'>>> = {
  'namespace-opt-in': { namespaceOptedIn: true },
  'pod-opt-out': { namespaceOptedIn: true, skipped: true },
  'not-selected': { skipped: true },
  'custom-config': { config: customConfig },
  'builtin-policy': { config: builtinPolicyConfig },
  'pull-secrets': { config: sidecarOverridesConfig },
  'sidecar-overrides': { config: sidecarOverridesConfig },
  'cni-mode': { config: cniConfig },
  'cluster-settings': { config: clusterSettingsConfig },
};

/** Every testdata/<case>.yaml (beside its <case>.patched.yaml). */
const CASES: GoldenCase[] = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.patched.yaml'))
  .sort()
  .map((f) => {
    const name = f.slice(0, -'.yaml'.length);
    return { name, ...OPTIONS[name] };
  });

const refresh = process.env.REFRESH_GOLDEN === '1';
const { applyPatch } = fastJsonPatch;

function apply(pod: V1Pod, patch: readonly JsonPatchOp[]): V1Pod {
  // validateOperation=true: every op must be applicable to exactly this pod (e.g. no add past the end).
  return applyPatch(structuredClone(pod), structuredClone(patch) as fastJsonPatch.Operation[], true, false).newDocument;
}

/**
 * Paths sluice may write: its annotations and injected label, the token automount flag, volumes,
 * init containers, agent env/mounts, allowPrivilegeEscalation where an agent container leaves it unset,
 * and pull secrets appended at the end of spec.imagePullSecrets (never a replaced or removed entry).
 */
const OWNED = [
  /^\/metadata\/annotations(\/sluice\.io~1(status|creator))?$/,
  /^\/metadata\/labels(\/sluice\.io~1injected)?$/,
  /^\/spec\/(initContainers|containers)\/[0-9]+\/securityContext(\/allowPrivilegeEscalation)?$/,
  /^\/spec\/automountServiceAccountToken$/,
  /^\/spec\/imagePullSecrets(\/-)?$/,
  /^\/spec\/volumes(\/-|\/[0-9]+)?$/,
  /^\/spec\/initContainers(\/[01])?$/,
  /^\/spec\/(initContainers|containers)\/[0-9]+\/(env|volumeMounts)(\/-|\/[0-9]+)?$/,
];

function run(c: GoldenCase, pod: V1Pod) {
  return planInjection(pod, { namespace: pod.metadata?.namespace ?? 'agents', namespaceOptedIn: c.namespaceOptedIn ?? false, userInfo: alice }, c.config ?? testConfig());
}

describe('golden injection', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const input = loadPod(`${c.name}.yaml`);
    const plan = run(c, input);
    if (c.skipped) expect(plan.kind).toBe('skip');
    else expect(plan.kind).toBe('patch');
    const patch = plan.kind === 'patch' ? plan.patch : [];
    for (const op of patch) expect(OWNED.some((re) => re.test(op.path)) ? op.path : `not owned: ${op.path}`).toBe(op.path);
    // Removals are only of the ServiceAccount plugin's default token (volume or its mounts).
    for (const op of patch.filter((o) => o.op === 'remove')) {
      const target = op.path.split('/').slice(1).reduce<unknown>((node, key) => (node as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')], input) as { name: string };
      expect(target.name).toMatch(/^kube-api-access-/);
    }
    const patched = apply(input, patch);

    const goldenPath = join(TESTDATA, `${c.name}.patched.yaml`);
    const rendered = stringify(patched, { lineWidth: 0 });
    if (refresh) writeFileSync(goldenPath, rendered);
    expect(rendered).toBe(readFileSync(goldenPath, 'utf8'));

    // Idempotency: injecting the injected pod changes nothing.
    const again = run(c, patched);
    expect(again.kind === 'patch' ? again.patch : []).toEqual([]);
    // And the guard accepts what the injector produced (it is exactly the rendering). The one thing
    // the injector deliberately does not choose is the agent's UID: a pod that sets none is refused
    // for that alone (guard.uid_unset), never for anything sluice wrote.
    if (!c.skipped) {
      const found = guardPodCreate(patched, { namespace: 'agents', namespaceOptedIn: c.namespaceOptedIn ?? false, userInfo: alice }, c.config ?? testConfig());
      expect(found.filter((v) => v.rule !== 'guard.uid_unset')).toEqual([]);
      if (c.name === 'plain-pod' || c.name === 'already-injected') expect(found).toEqual([]);
    }
  });

  test('every expected file has its input, and every case with options has a file', () => {
    const names = new Set(CASES.map((c) => c.name));
    const orphans = readdirSync(TESTDATA)
      .filter((f) => f.endsWith('.patched.yaml'))
      .filter((f) => !names.has(f.replace(/\.patched\.yaml$/, '')));
    expect(orphans).toEqual([]);
    expect(Object.keys(OPTIONS).filter((name) => !names.has(name))).toEqual([]);
    expect(CASES.length).toBeGreaterThanOrEqual(12);
  });
});
