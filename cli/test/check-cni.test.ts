// `kubectl sluice check` and the interception mode (docs/cni.md): the mode read from the webhook's
// config.yaml, and an agent namespace's Pod Security level judged by it — "restricted" refuses
// injected pods in mode init and is what mode cni is for.
import { describe, expect, test } from '@jest/globals';
import { interceptionModeOf, podSecurityCheck } from '../src/commands/check.ts';

const ns = (level?: string) => ({ metadata: { name: 'agents', ...(level ? { labels: { 'pod-security.kubernetes.io/enforce': level } } : {}) } });

describe('interception mode in check', () => {
  test('read from the webhook config; absent or unknown is init (webhooks before the setting)', () => {
    expect(interceptionModeOf('interception:\n  mode: cni\nnamespace: sluice-system\n')).toBe('cni');
    expect(interceptionModeOf('interception:\n  mode: init\n')).toBe('init');
    expect(interceptionModeOf('namespace: sluice-system\n')).toBe('init');
    expect(interceptionModeOf(undefined)).toBe('init');
  });

  test('restricted and baseline fail in mode init and pass in mode cni, naming the level', () => {
    for (const level of ['restricted', 'baseline']) {
      expect(podSecurityCheck(ns(level), 'init').status).toBe('fail');
      expect(podSecurityCheck(ns(level), 'cni')).toEqual({ category: 'agent-namespaces', status: 'ok', message: `namespace agents: Pod Security "${level}" (mode cni: sluice's containers pass restricted)` });
    }
    expect(podSecurityCheck(ns(), 'cni').message).toContain('unset (the cluster default)');
    expect(podSecurityCheck(ns('privileged'), 'init').status).toBe('ok');
  });
});
