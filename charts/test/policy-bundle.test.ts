// policy.bundle release: what the chart renders for a custom signed bundle kept in one ConfigMap of
// the release namespace — the webhook told where it is (the sidecar reads it, nothing mounted), read
// access for every ServiceAccount to that one object only, the admission guard on writing it, a
// verification key required — and that the release does not grow with agents.namespaces.
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { CHART, NAMESPACE, RELEASE, find, helm, template, templateError, templateText, valuesFile } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

const KEY = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n';
const RELEASE_VALUES = { policy: { bundle: 'release' }, sidecar: { config: { policy: { verification: { algorithm: 'ES256', publicKey: KEY } } } } };

interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

function webhookConfig(objs: K8sObject[]) {
  return parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
}

/** What the release Secret stores of the manifest: gzip, then base64 (Helm's encoding). */
function releaseBytes(manifest: string): number {
  return Buffer.from(execFileSync('gzip', ['-9c'], { input: manifest, maxBuffer: 256 * 1024 * 1024 })).toString('base64').length;
}

describe('policy.bundle release', () => {
  test('the webhook points the sidecar at the release namespace object; no policy volume, nothing in agent namespaces', async () => {
    const objs = await template({ ...RELEASE_VALUES, agents: { namespaces: ['agents', 'team-b'] } });
    const config = webhookConfig(objs);
    expect(config.sidecar.policyBundleObject).toBe(`${NAMESPACE}/sluice-policy-bundle`);
    expect(config.sidecar.policyConfigMap).toBeNull();
    expect(objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.namespace !== NAMESPACE)).toEqual([]);
    // No bundle given: the chart renders no ConfigMap for it (kubectl creates it).
    expect(objs.some((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sluice-policy-bundle')).toBe(false);
  });

  test('every ServiceAccount may get, list and watch that one object, in the release namespace, and write nothing', async () => {
    const objs = await template({ ...RELEASE_VALUES, policy: { bundle: 'release', release: { configMapName: 'org-policy' } } });
    const role = find(objs, 'Role', 'sluice-policy-bundle-reader') as K8sObject & { rules: Rule[] };
    expect(role.metadata.namespace).toBe(NAMESPACE);
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['org-policy'], verbs: ['get', 'list', 'watch'] }]);
    const binding = find(objs, 'RoleBinding', 'sluice-policy-bundle-reader') as K8sObject & { subjects: unknown[]; roleRef: unknown };
    expect(binding.metadata.namespace).toBe(NAMESPACE);
    expect(binding.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:serviceaccounts' }]);
    expect(webhookConfig(objs).sidecar.policyBundleObject).toBe(`${NAMESPACE}/org-policy`);
  });

  test('the guard names the object and the writer namespaces; off with admissionPolicy.enabled=false', async () => {
    const objs = await template({ ...RELEASE_VALUES, policy: { ...RELEASE_VALUES.policy, writerServiceAccountNamespaces: ['argocd'] } });
    const vap = find(objs, 'ValidatingAdmissionPolicy', 'sluice-policy-bundle-guard.sluice.io') as K8sObject & {
      spec: { matchConstraints: { namespaceSelector: unknown; resourceRules: { resourceNames: string[]; operations: string[] }[] }; variables: { name: string; expression: string }[] };
    };
    expect(vap.spec.matchConstraints.namespaceSelector).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': NAMESPACE } });
    expect(vap.spec.matchConstraints.resourceRules[0]).toMatchObject({ resourceNames: ['sluice-policy-bundle'], operations: ['CREATE', 'UPDATE', 'DELETE'] });
    expect(vap.spec.variables.find((v) => v.name === 'writerNamespaces')!.expression).toBe('["argocd"]');
    expect(find(objs, 'ValidatingAdmissionPolicyBinding', 'sluice-policy-bundle-guard.sluice.io')).toMatchObject({ spec: { validationActions: ['Deny', 'Audit'] } });
    const off = await template({ ...RELEASE_VALUES, admissionPolicy: { enabled: false } });
    expect(off.some((o) => o.metadata.name === 'sluice-policy-bundle-guard.sluice.io')).toBe(false);
  });

  test('refused without a verification key; the bundle given as a value becomes binaryData', async () => {
    expect(await templateError({ policy: { bundle: 'release' } })).toContain('policy.bundle release needs sidecar.config.policy.verification');
    const archive = Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]).toString('base64');
    const objs = await template({ ...RELEASE_VALUES, policy: { bundle: 'release', release: { bundleBase64: archive } } });
    const cm = find(objs, 'ConfigMap', 'sluice-policy-bundle') as K8sObject & { binaryData: Record<string, string> };
    expect(cm.metadata.namespace).toBe(NAMESPACE);
    expect(cm.binaryData).toEqual({ 'bundle.tar.gz': archive });
    expect(await templateError({ ...RELEASE_VALUES, policy: { bundle: 'release', release: { bundleBase64: 'not base64!' } } })).toContain('bundleBase64');
  });

  test('the install notes say where the bundle goes and how to create it; not when the chart creates it', async () => {
    const notes = async (values: unknown) => (await helm(['install', RELEASE, CHART, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile(values)])).stdout;
    const text = await notes(RELEASE_VALUES);
    expect(text).toContain(`from ConfigMap ${NAMESPACE}/sluice-policy-bundle`);
    expect(text).toContain(`kubectl -n ${NAMESPACE} create configmap sluice-policy-bundle --from-file=bundle.tar.gz`);
    const given = await notes({ ...RELEASE_VALUES, policy: { bundle: 'release', release: { bundleBase64: 'H4sIAAAA' } } });
    expect(given).toContain('from ConfigMap');
    expect(given).not.toContain('create configmap');
    expect(await notes({})).not.toContain('your signed bundle');
  });

  test('the release does not grow with agents.namespaces: 1 and 50 namespaces', async () => {
    const ns = (n: number) => Array.from({ length: n }, (_, i) => `agents-${i + 1}`);
    const [one, fifty, imageOne] = await Promise.all([
      templateText({ ...RELEASE_VALUES, agents: { namespaces: ns(1) } }),
      templateText({ ...RELEASE_VALUES, agents: { namespaces: ns(50) } }),
      templateText({ agents: { namespaces: ns(1) } }),
    ]);
    const perNamespace = (releaseBytes(fifty) - releaseBytes(one)) / 49;
    console.log(`policy.bundle release: helm template ${one.length} B (release Secret ~${releaseBytes(one)} B) for 1 namespace, ${fifty.length} B (~${releaseBytes(fifty)} B) for 50; ${Math.round(perNamespace)} B per extra namespace; image mode, 1 namespace: ~${releaseBytes(imageOne)} B`);
    // Only the approvals Role and binding are per namespace (as in image mode); the bundle objects are there once.
    expect(perNamespace).toBeLessThan(1024);
    expect(releaseBytes(fifty)).toBeLessThan(64 * 1024);
    expect(releaseBytes(one) - releaseBytes(imageOne)).toBeLessThan(2048);
  });
});

describe('policy.bundle oci', () => {
  test('the webhook gives the sidecar the reference, poll interval and pull secret file; nothing else in agent namespaces', async () => {
    const objs = await template({
      ...RELEASE_VALUES,
      agents: { namespaces: ['agents'] },
      policy: { bundle: 'oci', oci: { reference: 'registry.example.com/acme/policy:prod', pollSeconds: 30, pullSecretFile: '/etc/sluice/mounts/pull/.dockerconfigjson' } },
    });
    const config = webhookConfig(objs);
    expect(config.sidecar.policyOci).toEqual({ reference: 'registry.example.com/acme/policy:prod', pollIntervalMs: 30_000, pullSecretFile: '/etc/sluice/mounts/pull/.dockerconfigjson' });
    expect(config.sidecar.policyConfigMap).toBeNull();
    expect(config.sidecar.policyBundleObject).toBeNull();
    expect(objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.namespace !== NAMESPACE)).toEqual([]);
  });

  test('refused without a reference or without a verification key', async () => {
    expect(await templateError({ ...RELEASE_VALUES, policy: { bundle: 'oci' } })).toContain('policy.bundle oci needs policy.oci.reference');
    expect(await templateError({ policy: { bundle: 'oci', oci: { reference: 'registry.example.com/acme/policy:prod' } } })).toContain('policy.bundle oci needs sidecar.config.policy.verification');
  });
});
