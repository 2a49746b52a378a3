// The one merge every reader of SluicePolicy objects uses (sidecar, `kubectl sluice policy eval
// --cluster`): what applies to a namespace, in which order, and that anything invalid that could
// apply makes the whole result an error (a reader keeps its last good policy).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { SLUICE_POLICY_API_VERSION, SLUICE_POLICY_KIND, appliesToNamespace, effectiveSluicePolicy, labelSelectorMatches } from '../src/index.ts';
import type { EffectiveSluicePolicy, SluicePolicySpecInput } from '../src/index.ts';

const ORG = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as Record<string, unknown>;

function obj(name: string, spec: SluicePolicySpecInput | Record<string, unknown>, rv = '1') {
  return { apiVersion: SLUICE_POLICY_API_VERSION, kind: SLUICE_POLICY_KIND, metadata: { name, resourceVersion: rv, generation: 1 }, spec };
}

const base = obj('default', { organisation: { ...ORG, namespaces: { 'team-a': { aws: { buckets: ['a-from-default-*'] } } } }, sidecar: { masking: { enabled: true }, approvals: { maxWaitMs: 1000 } } });

function ok(objects: unknown[], ns: string, labels: Record<string, string> = {}): EffectiveSluicePolicy {
  const r = effectiveSluicePolicy(objects, { name: ns, labels });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.policy;
}

describe('effectiveSluicePolicy', () => {
  test('no default object: an error, never an empty policy', () => {
    const r = effectiveSluicePolicy([obj('team-a', { appliesTo: { namespaces: ['team-a'] }, namespace: { aws: { buckets: ['x'] } } })], { name: 'team-a' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.map((p) => p.code)).toEqual(['sluicepolicy.missing_default']);
  });

  test('the default applies everywhere with defaults filled in and only this namespace\u2019s entry', () => {
    const p = ok([base], 'team-b');
    expect(p.organisation.name).toBe('acme');
    expect(p.organisation.namespaces).toEqual({});
    expect(p.organisation.registries.go_proxies).toEqual(['proxy.golang.org', 'sum.golang.org']);
    expect(p.sidecar).toEqual({ masking: { enabled: true }, approvals: { maxWaitMs: 1000 } });
    expect(p.sources.map((s) => s.name)).toEqual(['default']);
    expect(ok([base], 'team-a').organisation.namespaces).toEqual({ 'team-a': { aws: { buckets: ['a-from-default-*'] } } });
  });

  test('bindings by name pattern and selector append organisation lists and deep-merge settings in priority order', () => {
    const low = obj('b-low', { appliesTo: { namespaces: ['team-*'] }, priority: 1, namespace: { aws: { buckets: ['low-*', 'a-from-default-*'] } }, sidecar: { approvals: { maxWaitMs: 2000, notify: { url: 'https://x' } } } });
    const high = obj('a-high', { appliesTo: { namespaceSelector: { matchLabels: { tier: 'gold' } } }, priority: 5, namespace: { aws: { buckets: ['high-*'] }, llm: { models: ['o9'] } }, sidecar: { approvals: { maxWaitMs: 3000 } } });
    const p = ok([high, base, low], 'team-a', { tier: 'gold' });
    expect(p.sources.map((s) => s.name)).toEqual(['default', 'b-low', 'a-high']);
    expect(p.organisation.namespaces['team-a']).toEqual({ aws: { buckets: ['a-from-default-*', 'low-*', 'high-*'] }, llm: { models: ['o9'] } });
    expect(p.sidecar).toEqual({ masking: { enabled: true }, approvals: { maxWaitMs: 3000, notify: { url: 'https://x' } } });
    // Same priority: ordered by name, the later name wins.
    const z = obj('z', { appliesTo: { namespaces: ['team-a'] }, sidecar: { approvals: { maxWaitMs: 9 } } });
    const y = obj('y', { appliesTo: { namespaces: ['team-a'] }, sidecar: { approvals: { maxWaitMs: 8 } } });
    expect((ok([base, z, y], 'team-a').sidecar.approvals as { maxWaitMs: number }).maxWaitMs).toBe(9);
    // Not matching: neither name nor labels.
    expect(ok([base, low, high], 'other', { tier: 'silver' }).sources.map((s) => s.name)).toEqual(['default']);
  });

  test('namespaces and namespaceSelector both set: both must match', () => {
    const a = { namespaces: ['team-a'], namespaceSelector: { matchLabels: { env: 'prod' } } };
    expect(appliesToNamespace(a, { name: 'team-a', labels: { env: 'prod' } })).toBe(true);
    expect(appliesToNamespace(a, { name: 'team-a', labels: { env: 'dev' } })).toBe(false);
    expect(appliesToNamespace(a, { name: 'team-b', labels: { env: 'prod' } })).toBe(false);
  });

  test('label selector operators follow Kubernetes', () => {
    const labels = { env: 'prod', team: 'a' };
    expect(labelSelectorMatches({}, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels)).toBe(false);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'missing', operator: 'NotIn', values: ['x'] }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels)).toBe(false);
    expect(appliesToNamespace({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ns1' } } }, { name: 'ns1' })).toBe(true);
  });

  test('an invalid object that could apply fails the whole result; one that cannot apply is only reported', () => {
    const badHere = obj('bad', { appliesTo: { namespaces: ['team-a'] }, namespace: { aws: { accounts: ['not-an-account'] } } });
    const r = effectiveSluicePolicy([base, badHere], { name: 'team-a' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems[0]).toMatchObject({ object: 'bad', code: 'sluicepolicy.invalid' });
    expect(!r.ok && r.problems[0]!.message).toContain('namespace.aws.accounts.0');
    const elsewhere = effectiveSluicePolicy([base, badHere], { name: 'team-b' });
    expect(elsewhere.ok && elsewhere.ignored.map((p) => p.object)).toEqual(['bad']);
    // An unreadable appliesTo could apply anywhere.
    const unknownScope = obj('worse', { appliesTo: { namespaces: 'team-a' } });
    expect(effectiveSluicePolicy([base, unknownScope], { name: 'team-b' }).ok).toBe(false);
    // A broken default breaks every namespace.
    const badDefault = obj('default', { organisation: { ...ORG, aws: 'nope' } });
    expect(effectiveSluicePolicy([badDefault], { name: 'team-b' }).ok).toBe(false);
  });

  test('the default/binding roles are enforced', () => {
    const codes = (objects: unknown[]) => {
      const r = effectiveSluicePolicy(objects, { name: 'team-a' });
      return r.ok ? [] : r.problems.map((p) => p.code);
    };
    expect(codes([obj('default', { sidecar: {} })])).toEqual(['sluicepolicy.missing_default']);
    expect(codes([obj('default', { organisation: ORG, appliesTo: { namespaces: ['x'] } })])).toEqual(['sluicepolicy.default_has_applies_to']);
    expect(codes([base, obj('team', { appliesTo: { namespaces: ['team-a'] }, organisation: ORG })])).toEqual(['sluicepolicy.organisation_outside_default']);
    expect(codes([base, obj('team', { namespace: {} })])).toEqual(['sluicepolicy.binding_without_applies_to']);
    expect(codes([base, obj('team', { appliesTo: { namespaces: ['team-a'] }, sidecar: { pod: { name: 'x' } } })])).toEqual(['sluicepolicy.invalid']);
  });

  test('the revision changes with the effective content only', () => {
    const a = ok([base], 'team-b').revision;
    expect(ok([obj('default', base.spec, '99')], 'team-b').revision).toBe(a);
    const changed = obj('default', { ...base.spec, sidecar: { masking: { enabled: false } } });
    expect(ok([changed], 'team-b').revision).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
  });
});
