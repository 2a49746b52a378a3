// `kubectl sluice check` finds the log store in the settings the sidecars actually run with: the
// SluicePolicy objects when the webhook's settingsSource is cluster (the chart's choice, no
// sluice-sidecar ConfigMap exists), the per-namespace ConfigMap when it is configMap — and names the
// source it read, so a skipped or failed probe can be traced to the object to fix.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditStoreOf, settingsFromConfigMap, settingsFromSluicePolicies, settingsSourceOf } from '../src/commands/check.ts';

const org = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as unknown;
const policy = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'sluice.io/v1alpha1', kind: 'SluicePolicy', metadata: { name }, spec });

describe('check reads the sidecar settings where the webhook tells sidecars to', () => {
  test('settingsSource from the webhook config.yaml: cluster as the chart renders it, configMap by default', () => {
    expect(settingsSourceOf('sidecar:\n  settingsSource: cluster\n  sidecarConfigMap: sluice-sidecar\n')).toEqual({ source: 'cluster', configMap: 'sluice-sidecar' });
    expect(settingsSourceOf('sidecar:\n  settingsSource: configMap\n  sidecarConfigMap: agent-settings\n')).toEqual({ source: 'configMap', configMap: 'agent-settings' });
    expect(settingsSourceOf(undefined)).toEqual({ source: 'configMap', configMap: 'sluice-sidecar' });
  });

  test('the store of a namespace is the merge of default and its bindings, naming the objects', () => {
    const objects = [
      policy('default', { organisation: org, sidecar: { audit: { store: { type: 'victorialogs', url: 'http://logs.sluice.svc:9428' } } } }),
      policy('team-a', { appliesTo: { namespaceSelector: { matchLabels: { team: 'a' } } }, sidecar: { audit: { store: { type: 'loki', url: 'http://loki.team-a.svc:3100' } } } }),
    ];
    const a = settingsFromSluicePolicies(objects, { name: 'agents-a', labels: { team: 'a' } });
    expect(a).toMatchObject({ from: 'SluicePolicy default+team-a' });
    expect(auditStoreOf('settings' in a ? a.settings : undefined)).toEqual({ kind: 'loki', url: 'http://loki.team-a.svc:3100' });
    const b = settingsFromSluicePolicies(objects, { name: 'agents-b', labels: {} });
    expect(b).toMatchObject({ from: 'SluicePolicy default' });
    expect(auditStoreOf('settings' in b ? b.settings : undefined)).toEqual({ kind: 'victorialogs', url: 'http://logs.sluice.svc:9428' });
  });

  test('no valid SluicePolicy for the namespace is a problem, not a silent skip', () => {
    expect(settingsFromSluicePolicies([], { name: 'agents', labels: {} })).toHaveProperty('problem');
    const broken = [policy('default', { organisation: org }), policy('bad', { appliesTo: { namespaces: ['agents'] }, organisation: org })];
    expect(settingsFromSluicePolicies(broken, { name: 'agents', labels: {} })).toHaveProperty('problem');
  });

  test('the ConfigMap source: its sidecar.yaml, none, absent, or not YAML', () => {
    const cm = settingsFromConfigMap('agents', 'sluice-sidecar', { 'sidecar.yaml': 'audit:\n  store:\n    url: http://loki:3100\n' });
    expect(cm).toMatchObject({ from: 'ConfigMap agents/sluice-sidecar' });
    expect(auditStoreOf('settings' in cm ? cm.settings : undefined)).toEqual({ kind: 'loki', url: 'http://loki:3100' });
    const none = settingsFromConfigMap('agents', 'sluice-sidecar', { 'sidecar.yaml': 'audit:\n  store: none\n' });
    expect(auditStoreOf('settings' in none ? none.settings : undefined)).toBe('none');
    expect(settingsFromConfigMap('agents', 'sluice-sidecar', undefined)).toEqual({ from: 'ConfigMap agents/sluice-sidecar', settings: undefined });
    expect(settingsFromConfigMap('agents', 'sluice-sidecar', { 'sidecar.yaml': 'audit: [' })).toHaveProperty('problem');
  });
});
