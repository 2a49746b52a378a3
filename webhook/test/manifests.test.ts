// The shipped registrations keep the promises DESIGN.md makes (failurePolicy Fail, small timeout,
// no side effects, reinvocation, never kube-system or sluice's own namespace) and point only at
// paths the server serves; the policy's constants agree with the default config. The real API
// server accepting and enforcing them is e2e/webhook.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { parseWebhookConfig } from '../src/config.ts';
import { RULES } from '../src/violations.ts';

interface Selector {
  matchExpressions?: { key: string; operator: string; values: string[] }[];
}
interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  reinvocationPolicy?: string;
  clientConfig: { service: { path: string } };
  namespaceSelector: Selector;
  objectSelector?: unknown;
}
interface Doc {
  kind: string;
  metadata: { name: string };
  webhooks?: Webhook[];
  spec: {
    policyName: string;
    validationActions: string[];
    failurePolicy: string;
    matchConstraints: { namespaceSelector: Selector };
    validations: { message: string; reason: string }[];
  };
}

const DIR = join(import.meta.dirname, '..', 'manifests');
const load = (file: string) => parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Doc);
const SERVED = new Set(['/mutate', '/mutate/namespace', '/validate', '/validate/namespace', '/validate/injected', '/validate/connect']);
/** Webhooks that see requests cluster-wide and fail open, each backed by an admission policy. */
const FAIL_OPEN = new Set(['exec.guard.sluice.io', 'connect.guard.sluice.io']);
const NEVER = ['kube-system', 'kube-public', 'kube-node-lease', 'sluice-system'];

function excludedNamespaces(selector: Selector): string[] {
  return selector.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn')?.values ?? [];
}

describe.each(['mutating-webhook.yaml', 'validating-webhook.yaml'])('%s', (file) => {
  const [config] = load(file);
  const hooks = config!.webhooks ?? [];

  test.each(hooks.map((h) => [h.name, h] as const))('%s is fail-closed, fast and side-effect free (the injector: on dry runs)', (_name, hook) => {
    // exec/attach is the one exception: the exec-guard policy enforces it in the API server (below).
    expect(hook.failurePolicy).toBe(FAIL_OPEN.has(hook.name) ? 'Ignore' : 'Fail');
    // The injector writes the approvals RoleBindings of an agent namespace (agent-rbac.ts), never on a dry run.
    expect(hook.sideEffects).toBe(config!.kind === 'MutatingWebhookConfiguration' ? 'NoneOnDryRun' : 'None');
    expect(hook.timeoutSeconds).toBeLessThanOrEqual(5);
    expect(hook.admissionReviewVersions).toEqual(['v1']);
    expect(SERVED.has(hook.clientConfig.service.path)).toBe(true);
    expect(excludedNamespaces(hook.namespaceSelector)).toEqual(expect.arrayContaining(NEVER));
    if (config!.kind === 'MutatingWebhookConfiguration') expect(hook.reinvocationPolicy).toBe('IfNeeded');
  });

  test('the namespace webhook calls the /namespace path and the pod webhook does not', () => {
    for (const hook of hooks.filter((h) => h.objectSelector)) {
      const viaNamespace = (hook.namespaceSelector.matchExpressions ?? []).some((e) => e.key === 'sluice.io/inject' && e.operator === 'In');
      expect(hook.clientConfig.service.path.endsWith('/namespace')).toBe(viaNamespace);
    }
  });
});

describe('injected means injected: what keys the guard on updates', () => {
  const hooks = load('validating-webhook.yaml')[0]!.webhooks as (Webhook & { rules: { operations: string[]; resources: string[] }[]; objectSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } })[];

  test('every UPDATE registration is keyed on sluice.io/injected, which only the injector writes, never on sluice.io/inject', () => {
    const updates = hooks.filter((h) => h.rules.some((r) => r.operations.includes('UPDATE')));
    expect(updates.map((h) => h.name)).toEqual(['injected.guard.sluice.io']);
    const [hook] = updates;
    expect(hook!.objectSelector).toEqual({ matchLabels: { 'sluice.io/injected': 'true' } });
    expect(hook!.namespaceSelector.matchExpressions!.map((e) => e.key)).toEqual(['kubernetes.io/metadata.name']);
    expect(hook!.rules[0]!.resources.sort()).toEqual(['pods', 'pods/ephemeralcontainers', 'pods/resize']);
    expect(hook!.clientConfig.service.path).toBe('/validate/injected');
  });

  test('port-forward and proxy: fail closed where agents live, by the target pod everywhere else', () => {
    const connect = hooks.filter((h) => h.rules.some((r) => r.resources.includes('pods/portforward')));
    expect(connect.map((h) => [h.name, h.clientConfig.service.path, h.failurePolicy])).toEqual([
      ['portforward.guard.sluice.io', '/validate/namespace', 'Fail'],
      ['connect.guard.sluice.io', '/validate/connect', 'Ignore'],
    ]);
    for (const h of connect) expect(h.rules[0]!.resources.sort()).toEqual(['pods/portforward', 'pods/proxy']);
    // Together they cover every non-system namespace: opted in, and not.
    expect(connect.map((h) => h.namespaceSelector.matchExpressions!.find((e) => e.key === 'sluice.io/inject'))).toEqual([
      { key: 'sluice.io/inject', operator: 'In', values: ['true'] },
      { key: 'sluice.io/inject', operator: 'NotIn', values: ['true'] },
    ]);
  });

  test('the policy decides "guarded" from the markers of the old object too', () => {
    const text = readFileSync(join(DIR, 'validating-admission-policy.yaml'), 'utf8');
    expect(text).toMatch(/name: injectedBefore\n\s+expression: "variables.oldStatus != '<absent>' \|\| variables.oldInjected == 'true'"/);
    expect(text).toMatch(/variables.injectedBefore \|\| variables.newInjected != '<absent>'/);
  });
});

describe('validating-admission-policy.yaml', () => {
  const docs = load('validating-admission-policy.yaml');
  const policies = docs.filter((d) => d.kind === 'ValidatingAdmissionPolicy');
  const bindings = docs.filter((d) => d.kind === 'ValidatingAdmissionPolicyBinding');

  test('exec/attach into sluice containers is covered by a policy (the exec webhook may fail open)', () => {
    const exec = policies.find((p) => p.metadata.name === 'sluice-exec-guard.sluice.io');
    expect(exec?.spec.validations[0]?.message).toMatch(/^sluice guard\.exec_sidecar:/);
  });

  test('every policy is bound with Deny and fails closed', () => {
    expect(bindings.map((b) => b.spec.policyName).sort()).toEqual(policies.map((p) => p.metadata.name).sort());
    for (const b of bindings) expect(b.spec.validationActions).toEqual(['Deny']);
    for (const p of policies) {
      expect(p.spec.failurePolicy).toBe('Fail');
      expect(excludedNamespaces(p.spec.matchConstraints.namespaceSelector)).toEqual(expect.arrayContaining(NEVER));
    }
  });

  test('messages carry the webhook’s rule codes; the UID is the default proxy UID', () => {
    const text = readFileSync(join(DIR, 'validating-admission-policy.yaml'), 'utf8');
    for (const p of policies) {
      for (const v of p.spec.validations) {
        const code = /^sluice (guard\.[a-z_]+):/.exec(v.message)?.[1];
        expect(RULES).toContain(code);
        expect(v.reason).toBe('Forbidden');
      }
    }
    const uids = [...text.matchAll(/\b(\d{4})\b/g)].map((m) => Number(m[1]));
    expect(new Set(uids)).toEqual(new Set([parseWebhookConfig({ sidecar: { image: 'x' } }).sidecar.proxyUID]));
  });
});
