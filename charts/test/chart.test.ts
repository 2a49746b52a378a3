// charts/sluice rendered by the real Helm: lint and golden snapshots over the values matrix, the
// schema refusing typos and wrong types, the webhook registrations and admission policies equal to
// webhook/manifests (their one source), the webhook's own config schema accepting what the chart
// renders, a serving certificate that verifies for the Service name, least-privilege RBAC, the
// hardened Deployment, the policy bundle, NetworkPolicy and the monitoring objects.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../lib/src/policy/engine.ts';
import { golden, goldenFiles, snapshot } from './support/golden.ts';
import { CHART, KUBE_VERSION, MATRIX, NAMESPACE, REPO, find, findAll, helm, lint, parseObjects, template, templateError, templateText } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

const MANIFESTS = join(REPO, 'webhook', 'manifests');
const rendered: Record<string, K8sObject[]> = {};
let agents: K8sObject[] = [];

interface Hook {
  name: string;
  clientConfig: { caBundle?: string; service?: { name: string; namespace: string; path: string; port: number } };
  namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  objectSelector?: unknown;
  failurePolicy: string;
  timeoutSeconds: number;
}
type WebhookConfiguration = K8sObject & { webhooks: Hook[] };
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
type Role = K8sObject & { rules: PolicyRule[] };
type Binding = K8sObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace?: string }[] };

function sourceManifests(): K8sObject[] {
  return readdirSync(MANIFESTS)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(MANIFESTS, f), 'utf8')).map((d) => d.toJS() as K8sObject))
    .filter((o) => o?.kind);
}

const registrations = (objs: K8sObject[]) => objs.filter((o) => o.kind.endsWith('WebhookConfiguration')) as WebhookConfiguration[];

function excludedBy(selector: Hook['namespaceSelector']): string[] {
  return selector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn')?.values ?? [];
}

beforeAll(async () => {
  const names = Object.keys(MATRIX);
  const results = await Promise.all([...names.map((n) => template(MATRIX[n])), template({ agents: { namespaces: ['agents', 'team-b'] } })]);
  names.forEach((n, i) => (rendered[n] = results[i]!));
  agents = results[names.length]!;
});

describe('lint and golden snapshots', () => {
  test.each(Object.keys(MATRIX))('helm lint --strict passes: %s', async (name) => {
    const res = await lint(MATRIX[name]);
    expect(res.stderr).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(res.code).toBe(0);
  });

  test.each(Object.keys(MATRIX))('helm template matches golden/%s.yaml', (name) => {
    const actual = snapshot(rendered[name]!);
    expect(actual).toBe(golden(name, actual));
  });

  test('helm package makes a self-contained archive (files/ links resolved) that renders the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-package-'));
    const res = await helm(['package', CHART, '-d', dir]);
    expect(res.code).toBe(0);
    const archive = join(dir, 'sluice-0.1.0.tgz');
    const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' });
    for (const f of ['sluice/files/policy-bundle/policy.wasm', 'sluice/files/crds/approvalrequests.sluice.io.yaml', 'sluice/files/webhook-manifests/approvals-webhook.yaml', 'sluice/dashboards/overview.json']) expect(listing).toContain(f);
    const fromArchive = await helm(['template', 'sluice', archive, '-n', NAMESPACE, '--kube-version', KUBE_VERSION]);
    expect(snapshot(parseObjects(fromArchive.stdout))).toBe(snapshot(rendered.defaults!));
  });

  test('every golden file has a matrix case', () => {
    expect(goldenFiles().sort()).toEqual(Object.keys(MATRIX).sort());
  });
});

describe('values.schema.json refuses what is not a value', () => {
  test.each([
    ['a typo at the top level', { webhok: { replicas: 3 } }, /webhok/],
    ['a typo in a nested key', { webhook: { replica: 3 } }, /replica/],
    ['a typo deep inside monitoring', { monitoring: { prometheusRule: { enable: true } } }, /enable/],
    ['a string where a number goes', { webhook: { replicas: '3' } }, /replicas/],
    ['a number where a list goes', { agents: { namespaces: 3 } }, /namespaces/],
    ['an unknown certificate mode', { certificates: { mode: 'vault' } }, /mode/],
    ['a malformed quantity', { sidecar: { spoolSizeLimit: '1 GB' } }, /spoolSizeLimit/],
    ['a sidecar mount naming both a Secret and a ConfigMap', { sidecar: { mounts: [{ name: 'x', secret: 's', configMap: 'c' }] } }, /mounts/],
    ['a token file named ..', { sidecar: { tokenAudiences: [{ audience: 'sts.amazonaws.com', path: '..' }] } }, /tokenAudiences/],
    ['a sidecar mount with an upper-case name', { sidecar: { mounts: [{ name: 'X', secret: 's' }] } }, /mounts/],
    ['zero replicas', { webhook: { replicas: 0 } }, /replicas/],
    ['an invalid namespace name', { agents: { namespaces: ['Agents_1'] } }, /namespaces/],
    ['a bad approval ttl', { approvals: { maxTTL: '2 days' } }, /maxTTL/],
    ['a typo inside the sidecar settings', { sidecar: { config: { credentials: { aws: { rols: [] } } } } }, /sidecar\/config\/credentials\/aws.*rols/],
    ['a malformed IAM role in the sidecar settings', { sidecar: { config: { credentials: { aws: { roles: [{ roleArn: 'agent-coder' }] } } } } }, /roles\/0\/roleArn/],
    ['a duration where the sidecar wants milliseconds', { sidecar: { config: { approvals: { maxWaitMs: '10m' } } } }, /approvals\/maxWaitMs/],
    ['a token exchange profile without its endpoint', { sidecar: { config: { credentials: { tokenExchange: { idp: { subjectTokenAudience: 'idp', hosts: ['api.example.com'] } } } } } }, /tokenEndpoint/],
    ['pod identity, which the webhook sets per pod', { sidecar: { config: { pod: { name: 'x' } } } }, /sidecar\/config.*pod/],
    ['the policy path, which the webhook sets per pod', { sidecar: { config: { policy: { path: '/tmp/p' } } } }, /sidecar\/config\/policy.*path/],
  ])('%s', async (_what, values, field) => {
    const err = await templateError(values);
    expect(err).toMatch(/values don't meet the specifications of the schema|schema/);
    expect(err).toMatch(field);
  });

  test('template-level checks name what is wrong', async () => {
    expect(await templateError({ agents: { namespaces: ['kube-system'] } })).toMatch(/agents\.namespaces: kube-system is excluded/);
    expect(await templateError({ agents: { namespaces: [NAMESPACE] } })).toMatch(/excluded/);
    expect(await templateError({ agents: { namespaces: ['agents'] }, policy: { bundle: 'configMap', override: { dataJson: '{}' } } })).toMatch(/policy\.override: set wasmBase64, dataJson and manifest together/);
    expect(await templateError({ agents: { namespaces: ['agents'] }, policy: { override: { dataJson: '{}' } } })).toMatch(/policy\.override needs policy\.bundle=configMap/);
    expect(await templateError({ webhook: { replicas: 2, podDisruptionBudget: { minAvailable: 2 } } })).toMatch(/minAvailable must be below webhook\.replicas/);
  });
});

describe('admission registrations come from webhook/manifests', () => {
  test('with release "sluice" in sluice-system they equal the manifests but for the caBundle and chart labels', async () => {
    // The reader ClusterRole is rendered (renamed, bound) by webhook-rbac.yaml; see the RBAC tests.
    // The manifests are the pod-opt-out variant; the chart's default (guard.allowPodOptOut: false)
    // rewrites those parts, tested with the opt-out rules below.
    const source = sourceManifests().filter((o) => /WebhookConfiguration$|ValidatingAdmissionPolicy/.test(o.kind));
    const objs = await template({ guard: { allowPodOptOut: true } });
    const shipped = objs.filter((o) => /WebhookConfiguration$|ValidatingAdmissionPolicy/.test(o.kind));
    expect(shipped.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(source.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    for (const o of shipped) {
      const src = source.find((s) => s.kind === o.kind && s.metadata.name === o.metadata.name)!;
      const copy = structuredClone(o) as WebhookConfiguration;
      for (const w of copy.webhooks ?? []) delete w.clientConfig.caBundle;
      for (const [k, v] of Object.entries(src.metadata.labels ?? {})) expect(copy.metadata.labels?.[k]).toBe(v);
      copy.metadata.labels = src.metadata.labels!;
      expect(copy).toEqual(src);
    }
  });

  test('another release and namespace: every registration points at its Service and never selects kube-system or its namespace', async () => {
    const objs = await template({ webhook: { excludedNamespaces: ['kube-system', 'monitoring'] } }, { release: 'guard', namespace: 'sec' });
    const regs = registrations(objs);
    expect(regs.map((r) => `${r.kind}/${r.metadata.name}`).sort()).toEqual([
      'MutatingWebhookConfiguration/guard-sluice-approvals',
      'MutatingWebhookConfiguration/guard-sluice-injector',
      'MutatingWebhookConfiguration/guard-sluice-workloads',
      'ValidatingWebhookConfiguration/guard-sluice-approvals',
      'ValidatingWebhookConfiguration/guard-sluice-guard',
    ]);
    // Mode self (the default): no caBundle rendered; the webhook is told these registrations and its Secret's name.
    const self = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'guard-sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml'])).selfCert!;
    expect(self.secretName).toBe('guard-sluice-webhook-certs');
    expect(self.hosts).toContain('guard-sluice-webhook.sec.svc');
    expect([...self.mutatingWebhookConfigurations, ...self.validatingWebhookConfigurations].sort()).toEqual(regs.map((r) => r.metadata.name).sort());
    for (const r of regs) {
      expect(r.metadata.name).toMatch(/^guard-sluice-/);
      for (const w of r.webhooks) {
        expect(w.clientConfig.service).toMatchObject({ name: 'guard-sluice-webhook', namespace: 'sec', port: 443 });
        expect(w.clientConfig.caBundle).toBeUndefined();
        expect(excludedBy(w.namespaceSelector)).toEqual(expect.arrayContaining(['kube-system', 'monitoring', 'sec']));
        expect(excludedBy(w.namespaceSelector)).not.toContain('sluice-system');
      }
    }
    const policies = findAll(objs, 'ValidatingAdmissionPolicy') as (K8sObject & { spec: { matchConstraints: { namespaceSelector?: Hook['namespaceSelector'] } } })[];
    // SluicePolicy objects are cluster-scoped: their guard selects no namespace (it names writers instead).
    expect(policies.filter((p) => !p.spec.matchConstraints.namespaceSelector).map((p) => p.metadata.name)).toEqual(['guard-sluice-policy-guard.sluice.io']);
    for (const p of policies.filter((p) => p.spec.matchConstraints.namespaceSelector)) {
      expect(excludedBy(p.spec.matchConstraints.namespaceSelector!)).toEqual(expect.arrayContaining(['kube-system', 'sec']));
    }
    for (const b of findAll(objs, 'ValidatingAdmissionPolicyBinding') as (K8sObject & { spec: { policyName: string } })[]) {
      expect(findAll(objs, 'ValidatingAdmissionPolicy').map((p) => p.metadata.name)).toContain(b.spec.policyName);
    }
  });

  test('failurePolicy is Fail for every pod and approval webhook (exec and connect stay Ignore, backed by the admission policies)', () => {
    for (const r of registrations(rendered.defaults!)) {
      for (const w of r.webhooks) expect([w.name, w.failurePolicy]).toEqual([w.name, ['exec.guard.sluice.io', 'connect.guard.sluice.io'].includes(w.name) ? 'Ignore' : 'Fail']);
    }
  });

  test('pod opt-out off: the namespace webhooks select labelled-false pods too, and so does the admission policy', async () => {
    const objs = await template({ guard: { allowPodOptOut: false } });
    const ns = registrations(objs).flatMap((r) => r.webhooks).filter((w) => w.name.startsWith('namespace.'));
    expect(ns).toHaveLength(2);
    for (const w of ns) expect(w.objectSelector).toBeUndefined();
    const vap = find(objs, 'ValidatingAdmissionPolicy', 'sluice-guard.sluice.io') as K8sObject & { spec: { variables: { name: string; expression: string }[] } };
    // Opting out is gone; what keys the policy on injected pods (the markers) stays.
    expect(vap.spec.variables.find((v) => v.name === 'agentPod')!.expression).toBe(
      "variables.podLabel == 'true' || variables.namespaceOptedIn || variables.injectedBefore || variables.newInjected != '<absent>' || variables.newStatus != '<absent>'",
    );
  });

  test('the approvers reach the kill-switch rule of the admission policy', async () => {
    const variable = async (values: unknown, name: string) =>
      ((find(await template(values), 'ValidatingAdmissionPolicy', 'sluice-guard.sluice.io') as K8sObject & { spec: { variables: { name: string; expression: string }[] } }).spec.variables.find((v) => v.name === name)!.expression);
    expect(await variable({}, 'namespaceApprovers')).toBe('{}');
    expect(await variable({}, 'approverGroups')).toContain(': ["sluice-approvers"]');
    const custom = { approvals: { approverGroups: ['sec', 'on-call'], namespaces: { agents: { approverGroups: ['team-a'] } } } };
    expect(await variable(custom, 'namespaceApprovers')).toBe('{"agents":["team-a"]}');
    expect(await variable(custom, 'approverGroups')).toContain(': ["sec","on-call"]');
  });

  test("the sidecar's ports reach the admission policies (each to its own value, even when they trade places)", async () => {
    const objs = await template({ sidecar: { ports: { transparent: 15080, proxy: 15001, dns: 16053, admin: 16090 } } });
    const guard = find(objs, 'ValidatingAdmissionPolicy', 'sluice-guard.sluice.io') as K8sObject & { spec: { variables: { name: string; expression: string }[] } };
    expect(guard.spec.variables.find((v) => v.name === 'sidecarPorts')!.expression).toBe('[15080, 15001, 16053, 16090]');
    const connect = JSON.stringify(find(objs, 'ValidatingAdmissionPolicy', 'sluice-connect-guard.sluice.io'));
    expect(connect).toContain("['15080', '15001', '16053', '16090']");
    expect(connect).not.toContain('15090');
    const settings = find(objs, 'ValidatingAdmissionPolicy', 'sluice-settings-guard.sluice.io') as K8sObject & { spec: { matchConstraints: { resourceRules: { resourceNames: string[] }[] } } };
    expect(settings.spec.matchConstraints.resourceRules[0]!.resourceNames).toEqual(['sluice-sidecar', 'sluice-policy']);
  });

  test('the sidecar UID reaches the admission policy', async () => {
    const text = JSON.stringify(find(await template({ sidecar: { proxyUID: 2600 } }), 'ValidatingAdmissionPolicy', 'sluice-guard.sluice.io'));
    expect(text).toContain('2600');
    expect(text).not.toContain('1337');
  });
});

describe('the webhook configuration', () => {
  test.each(Object.keys(MATRIX))('the webhook accepts the rendered config.yaml: %s', (name) => {
    const cm = find(rendered[name]!, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
    const config = parseWebhookConfig(parseYaml(cm.data['config.yaml']));
    expect(config.namespace).toBe(NAMESPACE);
    expect(config.sidecar.image).toBe('ghcr.io/sluice-dev/sluice-sidecar:0.1.0');
    expect(config.server.tlsDir).toBe('/etc/sluice/webhook-tls');
  });

  test('values flow into it: sidecar, guard, approvals', async () => {
    const objs = await template({
      sidecar: {
        proxyUID: 2600,
        image: { digest: `sha256:${'a'.repeat(64)}` },
        tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }],
        mounts: [{ name: 'github', secret: 'github-app-token', items: [{ key: 'token', path: 'token' }] }],
      },
      guard: { forbidRootAgents: true, staticCredentialSecrets: ['aws-keys'] },
      approvals: { approverGroups: ['sec'], namespaces: { agents: { approverGroups: ['team-a'] } }, maxTTL: '8h' },
    });
    const cm = find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
    const c = parseWebhookConfig(parseYaml(cm.data['config.yaml']));
    expect(c.sidecar).toMatchObject({ proxyUID: 2600, image: `ghcr.io/sluice-dev/sluice-sidecar@sha256:${'a'.repeat(64)}` });
    expect(c.sidecar.tokenAudiences).toEqual([{ audience: 'sts.amazonaws.com', path: 'aws', expirationSeconds: 3600 }]);
    expect(c.sidecar.mounts).toEqual([{ name: 'github', secret: 'github-app-token', items: [{ key: 'token', path: 'token' }], optional: false }]);
    expect(c.guard).toMatchObject({ forbidRootAgents: true, staticCredentialSecrets: ['aws-keys'] });
    expect(c.approvals).toEqual({ approverGroups: ['sec'], namespaces: { agents: { approverGroups: ['team-a'] } }, maxTTL: '8h' });
  });

  test('a changed config rolls the webhook pods (checksum annotation)', async () => {
    const a = find(rendered.defaults!, 'Deployment') as K8sObject & { spec: { template: { metadata: { annotations: Record<string, string> } } } };
    const b = find(await template({ guard: { forbidRootAgents: true } }), 'Deployment') as typeof a;
    expect(a.spec.template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    expect(b.spec.template.metadata.annotations['checksum/config']).not.toBe(a.spec.template.metadata.annotations['checksum/config']);
  });
});

describe('serving certificates', () => {
  test('helm mode: the serving certificate verifies against the CA every registration trusts, for the Service names', () => {
    const objs = rendered['helm-certs']!;
    const secret = (name: string) => (find(objs, 'Secret', name) as K8sObject & { data: Record<string, string> }).data;
    const ca = new X509Certificate(Buffer.from(secret('sluice-webhook-ca')['tls.crt']!, 'base64'));
    const leaf = new X509Certificate(Buffer.from(secret('sluice-webhook-tls')['tls.crt']!, 'base64'));
    expect(ca.ca).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    for (const host of ['sluice-webhook.sluice-system.svc', 'sluice-webhook.sluice-system.svc.cluster.local']) expect(leaf.checkHost(host)).toBe(host);
    expect(secret('sluice-webhook-tls')['ca.crt']).toBe(secret('sluice-webhook-ca')['tls.crt']);
    for (const w of registrations(objs).flatMap((r) => r.webhooks)) expect(w.clientConfig.caBundle).toBe(secret('sluice-webhook-ca')['tls.crt']);
    expect(find(objs, 'Secret', 'sluice-webhook-ca').metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
  });

  test('cert-manager mode: Certificates and CA injection instead of generated Secrets', () => {
    const objs = rendered['cert-manager']!;
    expect(findAll(objs, 'Secret')).toEqual([]);
    const cert = find(objs, 'Certificate', 'sluice-webhook') as K8sObject & { spec: { secretName: string; dnsNames: string[] } };
    expect(cert.spec.secretName).toBe('sluice-webhook-tls');
    expect(cert.spec.dnsNames).toContain('sluice-webhook.sluice-system.svc');
    for (const r of registrations(objs)) {
      expect(r.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe('sluice-system/sluice-webhook');
      for (const w of r.webhooks) expect(w.clientConfig.caBundle).toBeUndefined();
    }
    expect(findAll(objs, 'Issuer').map((i) => i.metadata.name).sort()).toEqual(['sluice-selfsigned', 'sluice-webhook-ca']);
  });

  test('cert-manager mode with your issuer creates no issuer of its own', async () => {
    const objs = await template({ certificates: { mode: 'cert-manager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } });
    expect(findAll(objs, 'Issuer')).toEqual([]);
    expect((find(objs, 'Certificate') as K8sObject & { spec: { issuerRef: unknown } }).spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });
});

describe('certificate mode self: the webhook keeps its own certificate', () => {
  const objs = () => rendered.self!;

  test('no key material and no caBundle; the webhook is told its Secret, Service names and registrations', () => {
    expect(findAll(objs(), 'Secret')).toEqual([]);
    expect(findAll(objs(), 'Certificate')).toEqual([]);
    const regs = registrations(objs());
    for (const w of regs.flatMap((r) => r.webhooks)) expect(w.clientConfig.caBundle).toBeUndefined();
    const cm = find(objs(), 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
    const config = parseWebhookConfig(parseYaml(cm.data['config.yaml']));
    expect(config.selfCert).toEqual({
      secretName: 'sluice-webhook-certs',
      hosts: ['sluice-webhook', 'sluice-webhook.sluice-system', 'sluice-webhook.sluice-system.svc', 'sluice-webhook.sluice-system.svc.cluster.local'],
      mutatingWebhookConfigurations: regs.filter((r) => r.kind === 'MutatingWebhookConfiguration').map((r) => r.metadata.name).sort(),
      validatingWebhookConfigurations: regs.filter((r) => r.kind === 'ValidatingWebhookConfiguration').map((r) => r.metadata.name).sort(),
      caValidityDays: 3650,
      validityDays: 365,
      renewBeforeDays: 30,
      resyncSeconds: 60,
    });
    expect(config.selfCert!.mutatingWebhookConfigurations.length + config.selfCert!.validatingWebhookConfigurations.length).toBe(regs.length);
  });

  test('a CA too short for the renewal window is refused at render time, naming both values', async () => {
    expect(await templateError({ certificates: { mode: 'self', caValidityDays: 60, renewBeforeDays: 30 } })).toMatch(/caValidityDays must exceed three times certificates\.renewBeforeDays/);
    expect(await templateError({ certificates: { mode: 'self', caValidityDays: 91, renewBeforeDays: 30 } })).toBe('');
  });

  test('self is the default: the default values render exactly what mode self renders', async () => {
    expect(snapshot(await template({ agents: { namespaces: ['agents'] } }))).toBe(snapshot(objs()));
    const config = parseWebhookConfig(parseYaml((find(rendered.defaults!, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
    expect(config.selfCert?.secretName).toBe('sluice-webhook-certs');
    expect(findAll(rendered.defaults!, 'Secret')).toEqual([]);
  });

  test('the other modes tell the webhook nothing of the kind', () => {
    for (const name of ['helm-certs', 'cert-manager']) {
      const cm = find(rendered[name]!, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } };
      expect(parseWebhookConfig(parseYaml(cm.data['config.yaml'])).selfCert).toBeUndefined();
    }
  });

  test('the pair is written into an in-memory emptyDir, not read from a Secret volume', () => {
    type Deployment = K8sObject & { spec: { template: { spec: { volumes: { name: string; emptyDir?: unknown; secret?: unknown }[]; containers: { volumeMounts: { name: string; readOnly: boolean }[] }[] } } } };
    const spec = (find(objs(), 'Deployment', 'sluice-webhook') as Deployment).spec.template.spec;
    expect(spec.volumes.find((v) => v.name === 'tls')).toEqual({ name: 'tls', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    expect(spec.containers[0]!.volumeMounts.find((m) => m.name === 'tls')!.readOnly).toBe(false);
  });

  test('RBAC: get/update on its one Secret by name, create on Secrets of its namespace only, get/patch on the named registrations', () => {
    const role = find(objs(), 'Role', 'sluice-webhook-certs') as Role & { rules: (PolicyRule & { resourceNames?: string[] })[] };
    expect(role.metadata.namespace).toBe(NAMESPACE);
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['sluice-webhook-certs'], verbs: ['get', 'update'] },
      // create cannot be restricted by resourceNames: RBAC decides before the body's name is known.
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ]);
    const cr = find(objs(), 'ClusterRole', 'sluice-webhook-certs') as Role & { rules: (PolicyRule & { resourceNames?: string[] })[] };
    const regs = registrations(objs());
    expect(cr.rules).toEqual([
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: regs.filter((r) => r.kind === 'MutatingWebhookConfiguration').map((r) => r.metadata.name).sort(), verbs: ['get', 'patch'] },
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], resourceNames: regs.filter((r) => r.kind === 'ValidatingWebhookConfiguration').map((r) => r.metadata.name).sort(), verbs: ['get', 'patch'] },
    ]);
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      const b = find(objs(), kind, 'sluice-webhook-certs') as Binding;
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: NAMESPACE }]);
    }
    expect(findAll(objs(), 'ClusterRoleBinding').map((b) => b.metadata.name).sort()).toEqual(['sluice-policy-reader', 'sluice-webhook-agent-rbac', 'sluice-webhook-certs', 'sluice-webhook-reader']);
  });
});

describe('GitOps: helm template is deterministic', () => {
  test.each([
    ['the default (self)', {}],
    ['self', { certificates: { mode: 'self' } }],
    ['cert-manager', { certificates: { mode: 'cert-manager' } }],
  ])('two renders with the same values are byte-identical in %s mode', async (_mode, values) => {
    const [a, b] = await Promise.all([templateText(values), templateText(values)]);
    expect(a.length).toBeGreaterThan(10_000);
    expect(b).toBe(a);
  });

  test('helm mode is not (a new CA per render without a live release): why Argo CD and Flux use self or cert-manager', async () => {
    const [a, b] = await Promise.all([templateText({ certificates: { mode: 'helm' } }), templateText({ certificates: { mode: 'helm' } })]);
    expect(b).not.toBe(a);
  });

  test('a global key (from a parent chart) is accepted', async () => {
    expect(await templateError({ global: { imageRegistry: 'registry.example.com', anything: { nested: true } } })).toBe('');
  });
});

describe('the webhook Deployment', () => {
  type Deployment = K8sObject & {
    spec: {
      replicas: number;
      template: {
        spec: {
          automountServiceAccountToken: boolean;
          securityContext: Record<string, unknown>;
          affinity?: { podAntiAffinity: Record<string, unknown> };
          containers: { image: string; resources: { requests: Record<string, string>; limits: Record<string, string> }; securityContext: Record<string, unknown>; startupProbe: unknown; readinessProbe: unknown; livenessProbe: unknown }[];
        };
      };
    };
  };

  test('HA and hardened by default', () => {
    const d = find(rendered.defaults!, 'Deployment', 'sluice-webhook') as Deployment;
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    const pod = d.spec.template.spec;
    expect(pod.affinity?.podAntiAffinity).toHaveProperty('preferredDuringSchedulingIgnoredDuringExecution');
    // It reads pods and workload owners (get only) to copy creator stamps: see the RBAC tests.
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0]!;
    expect(c.image).toBe('ghcr.io/sluice-dev/sluice-webhook:0.1.0');
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.resources.requests).toEqual({ cpu: '50m', memory: '96Mi' });
    expect(c.resources.limits).toEqual({ memory: '256Mi' });
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe).toBeDefined();
    const pdb = find(rendered.defaults!, 'PodDisruptionBudget') as K8sObject & { spec: { minAvailable: number } };
    expect(pdb.spec.minAvailable).toBe(1);
  });

  test('HA off: one replica, no anti-affinity, no PodDisruptionBudget', () => {
    const objs = rendered['agents-ha-off']!;
    const d = find(objs, 'Deployment') as Deployment;
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.template.spec.affinity).toBeUndefined();
    expect(findAll(objs, 'PodDisruptionBudget')).toEqual([]);
  });

  test('hard anti-affinity is required scheduling', async () => {
    const d = find(await template({ webhook: { antiAffinity: 'hard', replicas: 3 } }), 'Deployment') as Deployment;
    expect(d.spec.template.spec.affinity?.podAntiAffinity).toHaveProperty('requiredDuringSchedulingIgnoredDuringExecution');
  });
});

describe('RBAC is least privilege', () => {
  const rules = (objs: K8sObject[]) => [...findAll(objs, 'Role'), ...findAll(objs, 'ClusterRole')] as Role[];

  test('no wildcard, no ClusterRoleBinding but the webhook reader’s, the webhook’s approvals-RBAC one and the SluicePolicy reader’s, no Secret access anywhere (but the certificate role of mode self, the default, pinned below)', () => {
    const selfRoles = (objs: K8sObject[]) => rules(objs).filter((r) => r.metadata.name === 'sluice-webhook-certs');
    for (const [name, objs] of [...Object.entries(rendered), ['agents', agents] as const]) {
      const selfMode = !['helm-certs', 'cert-manager'].includes(name);
      // Mode self (every render but those two): exactly the Secret/registration rules pinned in "certificate mode self".
      expect(selfRoles(objs)).toEqual(selfMode ? selfRoles(rendered.self!) : []);
      // interception.mode cni adds the node agent's reader (charts/test/cni.test.ts holds it to get on pods and one ConfigMap name).
      const bindings = findAll(objs, 'ClusterRoleBinding').map((b) => b.metadata.name).filter((n) => !(objs === rendered.cni && n === 'sluice-cni'));
      // sluice-webhook-agent-rbac: the webhook creates approvals RoleBindings in agent namespaces (charts/test/agent-rbac.test.ts pins its rules).
      const always = ['sluice-policy-reader', 'sluice-webhook-agent-rbac', 'sluice-webhook-reader'];
      expect(bindings.sort()).toEqual(selfMode ? [...always, 'sluice-webhook-certs'].sort() : always);
      for (const r of rules(objs).filter((r) => r.metadata.name !== 'sluice-webhook-certs')) {
        for (const rule of r.rules) {
          expect([...rule.verbs, ...rule.resources, ...rule.apiGroups]).not.toContain('*');
          expect(rule.resources).not.toContain('secrets');
        }
      }
    }
  });

  test('every ServiceAccount may read the SluicePolicy objects and get namespaces (the sidecars read with their pod\u2019s identity), nothing more', () => {
    const role = find(agents, 'ClusterRole', 'sluice-policy-reader') as Role;
    expect(role.rules).toEqual([
      { apiGroups: ['sluice.io'], resources: ['sluicepolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    ]);
    const binding = find(agents, 'ClusterRoleBinding', 'sluice-policy-reader') as Binding & { roleRef: { name: string } };
    expect(binding.roleRef.name).toBe('sluice-policy-reader');
    expect(binding.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:serviceaccounts' }]);
  });

  test('the webhook only reads: get on pods and workload owners, from webhook/manifests/reader-clusterrole.yaml, and no namespaced role but its certificate Secret’s (mode self, pinned above)', () => {
    const role = find(agents, 'ClusterRole', 'sluice-webhook-reader') as Role;
    const source = sourceManifests().find((o) => o.kind === 'ClusterRole') as Role;
    expect(role.rules).toEqual(source.rules);
    for (const rule of role.rules) expect(rule.verbs).toEqual(['get']);
    expect(role.rules.flatMap((r) => r.resources).sort()).toEqual(['cronjobs', 'daemonsets', 'deployments', 'jobs', 'pods', 'replicasets', 'statefulsets']);
    const binding = find(agents, 'ClusterRoleBinding', 'sluice-webhook-reader') as Binding & { roleRef: { name: string } };
    expect(binding.roleRef.name).toBe('sluice-webhook-reader');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: NAMESPACE }]);
    const bindings = findAll(agents, 'RoleBinding') as Binding[];
    expect(bindings.filter((b) => b.metadata.name !== 'sluice-webhook-certs').flatMap((b) => b.subjects).filter((s) => s.name === 'sluice-webhook')).toEqual([]);
    expect(bindings.filter((b) => b.metadata.name === 'sluice-webhook-certs').map((b) => [b.metadata.namespace, b.roleRef.name])).toEqual([[NAMESPACE, 'sluice-webhook-certs']]);
  });

  test('one sidecar Role per agent namespace: its own ApprovalRequests and nothing else, bound to that namespace only', () => {
    for (const ns of ['agents', 'team-b']) {
      const role = agents.find((o) => o.kind === 'Role' && o.metadata.namespace === ns && o.metadata.name === 'sluice-sidecar') as Role;
      expect(role.rules).toEqual([
        // delete: its own finished requests (the webhook refuses another pod's), docs/approvals.md "Expiry".
        { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
        { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch'] },
      ]);
      const binding = agents.find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === ns && o.metadata.name === 'sluice-sidecar') as Binding;
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sluice-sidecar' });
      expect(binding.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${ns}` }]);
    }
  });

  test('named agent service accounts and extra sidecar rules', async () => {
    const objs = await template({
      agents: { namespaces: ['agents'], serviceAccounts: ['coder'], extraSidecarRules: [{ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['deployer'] }] },
    });
    const binding = objs.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'sluice-sidecar') as Binding;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'coder', namespace: 'agents' }]);
    const role = objs.find((o) => o.kind === 'Role' && o.metadata.name === 'sluice-sidecar') as Role;
    expect(role.rules).toContainEqual({ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['deployer'] });
  });

  test('approvers: read requests, write their status, kill switch; bound per agent namespace to that namespace’s groups', () => {
    const objs = rendered['monitoring-on']!;
    const approver = find(objs, 'ClusterRole', 'sluice-approver') as Role;
    expect(approver.rules).toEqual([
      { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'update', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['patch'] },
    ]);
    const binding = find(objs, 'RoleBinding', 'sluice-approvers') as Binding;
    expect(binding.metadata.namespace).toBe('agents');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'sluice-approver' });
    expect(binding.subjects.map((s) => s.name)).toEqual(['platform-security']);
  });

  test('without the kill switch grant approvers cannot patch pods', async () => {
    const approver = find(await template({ approvals: { grantKillSwitch: false } }), 'ClusterRole', 'sluice-approver') as Role;
    expect(approver.rules.filter((r) => r.resources.includes('pods')).flatMap((r) => r.verbs)).toEqual(['get', 'list']);
  });
});

/** What the release Secret stores of the manifest: gzip, then base64 (Helm's encoding). */
function releaseBytes(manifest: string): number {
  return Buffer.from(execFileSync('gzip', ['-9c'], { input: manifest, maxBuffer: 256 * 1024 * 1024 })).toString('base64').length;
}

describe('agent namespaces', () => {
  test('by default nothing is copied into agent namespaces: no settings ConfigMap, no policy ConfigMap; the sidecar runs the library in its image with the SluicePolicy objects', () => {
    expect(agents.filter((o) => o.kind === 'ConfigMap' && o.metadata.namespace === 'agents').map((o) => o.metadata.name)).toEqual([]);
    const config = parseWebhookConfig(parseYaml((find(agents, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
    expect(config.sidecar.policyConfigMap).toBeNull();
  });

  test('the release does not grow with the policy per namespace: 50 agent namespaces stay far below the 1 MiB Secret limit', async () => {
    const ns = (n: number) => Array.from({ length: n }, (_, i) => `agents-${i + 1}`);
    const [one, fifty, copiedOne] = await Promise.all([
      templateText({ agents: { namespaces: ns(1) } }),
      templateText({ agents: { namespaces: ns(50) } }),
      templateText({ agents: { namespaces: ns(1) }, policy: { bundle: 'configMap' } }),
    ]);
    // Measured 2026-12: ~29 KB for 1 and ~31 KB for 50 (the SluicePolicy CRD and default object ~8 KB once; ~40 B per
    // namespace for the approvals Role and binding; the copied bundle alone was ~148 KB per namespace).
    const perNamespace = (releaseBytes(fifty) - releaseBytes(one)) / 49;
    expect(perNamespace).toBeLessThan(1024);
    expect(releaseBytes(fifty)).toBeLessThan(64 * 1024);
    expect(releaseBytes(copiedOne) - releaseBytes(one)).toBeGreaterThan(50 * perNamespace);
  });

  test('policy.bundle configMap: the ConfigMap holds what make policy built, byte for byte, and the webhook mounts it', async () => {
    const objs = await template({ agents: { namespaces: ['agents', 'team-b'] }, policy: { bundle: 'configMap' } });
    const config = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
    expect(config.sidecar.policyConfigMap).toBe('sluice-policy');
    const bundle = join(REPO, 'policies', 'build', 'bundle');
    for (const ns of ['agents', 'team-b']) {
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === ns && o.metadata.name === 'sluice-policy') as K8sObject & { data: Record<string, string>; binaryData: Record<string, string> };
      expect(Buffer.from(cm.binaryData['policy.wasm']!, 'base64').equals(readFileSync(join(bundle, 'policy.wasm')))).toBe(true);
      expect(cm.data['data.json']).toBe(readFileSync(join(bundle, 'data.json'), 'utf8'));
      expect(JSON.parse(cm.data['.manifest']!)).toEqual(JSON.parse(readFileSync(join(bundle, '.manifest'), 'utf8')));
      expect(cm.data['sluice.input-reads']).toBe(readFileSync(join(bundle, 'sluice.input-reads'), 'utf8'));
    }
  });

  test('policy.bundle configMap: a sidecar reading the mounted ConfigMap gets the decision cache (the bundle says what its policy reads)', async () => {
    const objs = await template({ agents: { namespaces: ['agents'] }, policy: { bundle: 'configMap' } });
    const cm = find(objs, 'ConfigMap', 'sluice-policy') as K8sObject & { data: Record<string, string>; binaryData: Record<string, string> };
    // As the kubelet mounts it: one file per key.
    const mounted = mkdtempSync(join(tmpdir(), 'sluice-policy-cm-'));
    for (const [key, text] of Object.entries(cm.data)) writeFileSync(join(mounted, key), text);
    for (const [key, b64] of Object.entries(cm.binaryData)) writeFileSync(join(mounted, key), Buffer.from(b64, 'base64'));
    const engine = new PolicyEngine();
    await engine.load(await readBundle(mounted));
    expect(engine.decisionCache).toMatchObject({ enabled: true });
  });

  test('policy.override replaces the bundle; another ConfigMap name reaches the webhook', async () => {
    const manifest = JSON.stringify({ revision: 'custom-1', roots: ['sluice'] });
    const objs = await template({ agents: { namespaces: ['agents'] }, policy: { bundle: 'configMap', configMapName: 'team-policy', override: { wasmBase64: Buffer.from('\0asm').toString('base64'), dataJson: '{"a":1}', manifest } } });
    const cm = find(objs, 'ConfigMap', 'team-policy') as K8sObject & { data: Record<string, string>; binaryData: Record<string, string> };
    expect(cm.data).toEqual({ 'data.json': '{"a":1}', '.manifest': manifest });
    expect(cm.binaryData['policy.wasm']).toBe(Buffer.from('\0asm').toString('base64'));
    const withReads = await template({ agents: { namespaces: ['agents'] }, policy: { bundle: 'configMap', override: { wasmBase64: Buffer.from('\0asm').toString('base64'), dataJson: '{}', manifest, inputReads: '{"x":1}' } } });
    expect((find(withReads, 'ConfigMap', 'sluice-policy') as K8sObject & { data: Record<string, string> }).data['sluice.input-reads']).toBe('{"x":1}');
    const config = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
    expect(config.sidecar.policyConfigMap).toBe('team-policy');
    // The renamed bundle ConfigMap is the one the settings guard keeps agents from writing.
    const guard = find(objs, 'ValidatingAdmissionPolicy', 'sluice-settings-guard.sluice.io') as K8sObject & { spec: { matchConstraints: { resourceRules: { resourceNames: string[] }[] } } };
    expect(guard.spec.matchConstraints.resourceRules[0]!.resourceNames).toEqual(['sluice-sidecar', 'team-policy']);
  });

  test('policy.create=false leaves the ConfigMap to you (e.g. a signed bundle.tar.gz), still mounted', async () => {
    const objs = await template({ agents: { namespaces: ['agents'] }, policy: { bundle: 'configMap', create: false } });
    expect(objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.namespace === 'agents').map((o) => o.metadata.name)).toEqual([]);
    const config = parseWebhookConfig(parseYaml((find(objs, 'ConfigMap', 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
    expect(config.sidecar.policyConfigMap).toBe('sluice-policy');
  });
});

describe('CRD, NetworkPolicy and monitoring', () => {
  test('the ApprovalRequest CRD is api/crds as generated, kept on uninstall', () => {
    const crd = find(rendered.defaults!, 'CustomResourceDefinition', 'approvalrequests.sluice.io');
    const source = parseYaml(readFileSync(join(REPO, 'api', 'crds', 'approvalrequests.sluice.io.yaml'), 'utf8')) as K8sObject & { spec: unknown };
    expect(crd.spec).toEqual(source.spec);
    expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
  });

  test('the webhook NetworkPolicy allows admission and scrapes in, only the API server’s ports out', () => {
    const np = find(rendered.defaults!, 'NetworkPolicy') as K8sObject & { spec: { policyTypes: string[]; egress: unknown[]; ingress: { ports: { port: string }[] }[] } };
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    // The webhook reads pods and workload owners (webhook-rbac.yaml); nothing else leaves the pod.
    expect(np.spec.egress).toEqual([{ ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }] }]);
    expect(np.spec.ingress.flatMap((i) => i.ports.map((p) => p.port)).sort()).toEqual(['https', 'metrics']);
  });

  test('the API server egress can be narrowed to the control plane', async () => {
    const peers = [{ ipBlock: { cidr: '10.0.0.1/32' } }];
    const np = find(await template({ networkPolicy: { apiServerPorts: [6443], apiServerPeers: peers } }), 'NetworkPolicy') as K8sObject & { spec: { egress: unknown[] } };
    expect(np.spec.egress).toEqual([{ ports: [{ port: 6443, protocol: 'TCP' }], to: peers }]);
  });

  test('monitoring off by default; on: ServiceMonitor, PodMonitor, PrometheusRule and dashboards', () => {
    const kinds = (objs: K8sObject[]) => objs.map((o) => o.kind);
    expect(kinds(rendered.defaults!)).not.toContain('ServiceMonitor');
    expect(kinds(rendered.defaults!)).not.toContain('PodMonitor');
    expect(kinds(rendered.defaults!)).not.toContain('PrometheusRule');
    const objs = rendered['monitoring-on']!;
    const sm = find(objs, 'ServiceMonitor') as K8sObject & { spec: { endpoints: { port: string }[] } };
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(sm.spec.endpoints[0]!.port).toBe('metrics');
    const pm = find(objs, 'PodMonitor') as K8sObject & { spec: { namespaceSelector: { matchNames: string[] }; podMetricsEndpoints: { port: string }[] } };
    expect(pm.spec.namespaceSelector.matchNames).toEqual(['agents']);
    expect(pm.spec.podMetricsEndpoints[0]!.port).toBe('sluice-admin');
  });

  test('the PrometheusRule is the generated rules file with runbook URLs and without disabled alerts', async () => {
    const source = parseYaml(readFileSync(join(CHART, 'alerts', 'sluice-alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] };
    const rule = find(rendered['monitoring-on']!, 'PrometheusRule') as K8sObject & { spec: { groups: { rules: { alert: string; annotations: Record<string, string> }[] }[] } };
    const alerts = rule.spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert).sort()).toEqual(source.groups.flatMap((g) => g.rules.map((r) => r.alert)).filter((a) => a !== 'SluiceDenySpike').sort());
    // The runbooks of the installed version (charts/test/doc-links.test.ts), not main.
    for (const a of alerts) expect(a.annotations.runbook_url).toBe(`https://github.com/sluice-dev/sluice/blob/v0.1.0/docs/runbooks/${a.alert}.md`);
    const own = find(await template({ monitoring: { prometheusRule: { enabled: true, runbookBaseURL: 'https://wiki.example.com/sluice/' } } }), 'PrometheusRule') as typeof rule;
    expect(own.spec.groups[0]!.rules[0]!.annotations.runbook_url).toMatch(/^https:\/\/wiki\.example\.com\/sluice\/Sluice[A-Za-z]+\.md$/);
  });

  test('dashboards are ConfigMaps Grafana’s sidecar picks up, holding the committed JSON', () => {
    const cms = findAll(rendered['monitoring-on']!, 'ConfigMap').filter((c) => c.metadata.labels?.grafana_dashboard === '1') as (K8sObject & { data: Record<string, string> })[];
    expect(cms.map((c) => c.metadata.name).sort()).toEqual(['sluice-dashboard-approvals', 'sluice-dashboard-audit-trail', 'sluice-dashboard-overview', 'sluice-dashboard-pod']);
    for (const cm of cms) {
      expect(cm.metadata.annotations?.grafana_folder).toBe('sluice');
      const [key, json] = Object.entries(cm.data)[0]!;
      expect(JSON.parse(json)).toEqual(JSON.parse(readFileSync(join(CHART, 'dashboards', key.replace(/^sluice-/, '')), 'utf8')));
    }
  });
});
