// The sidecar's `approvals` section: defaults (the hold's limits), and bad values that name the field.
import { describe, expect, test } from '@jest/globals';
import type { SchemaError } from '../../../api/src/index.ts';
import { loadSidecarConfig, parseSidecarConfig } from '../../src/config/sidecar-config.ts';
import { approvalName } from '../../src/approvals/index.ts';
import { approvalLabelValue, podSelector } from '../../../lib/src/approvals/labels.ts';

const base = { pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' }, policy: { path: '/p' }, trustDir: '/t' };

function issues(approvals: unknown): string[] {
  try {
    parseSidecarConfig({ ...base, approvals });
  } catch (err) {
    return [...(err as SchemaError).issues];
  }
  return [];
}

describe('approvals config', () => {
  test('defaults: on, 10 minutes max wait, 32 holds, 5 s grace, no notifications; frozen', () => {
    const c = parseSidecarConfig(base);
    expect(c.approvals).toMatchObject({ enabled: true, maxWaitMs: 600_000, maxConcurrentHolds: 32, apiGraceMs: 5_000, apiTimeoutMs: 5_000, notify: { format: 'slack', maxAttempts: 5 } });
    expect(c.approvals.kubeconfig).toBeUndefined();
    expect(c.approvals.inCluster).toBe(false);
    expect(Object.isFrozen(c.approvals.notify)).toBe(true);
  });

  test.each([
    [{ maxWaitMs: 0 }, 'approvals.maxWaitMs'],
    [{ maxConcurrentHolds: 0 }, 'approvals.maxConcurrentHolds'],
    [{ notify: { url: 'not a url' } }, 'approvals.notify.url'],
    [{ notify: { format: 'teams' } }, 'approvals.notify.format'],
    [{ surprise: true }, 'approvals'],
  ])('%j is refused naming %s', (approvals, field) => {
    const found = issues(approvals);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
  });
});

test('inside a pod (KUBERNETES_SERVICE_HOST set) the sidecar uses its service account; outside it does not', () => {
  const env = { SLUICE_POD_NAMESPACE: 'agents', SLUICE_POD_NAME: 'coder-0', SLUICE_SERVICE_ACCOUNT: 'coder', SLUICE_POLICY_PATH: '/p', SLUICE_TRUST_DIR: '/t' };
  expect(loadSidecarConfig({ ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1' }).approvals.inCluster).toBe(true);
  expect(loadSidecarConfig(env).approvals.inCluster).toBe(false);
});

describe('names and labels', () => {
  test('ApprovalRequest names are the pod name and six hex digits, at most 63 characters', () => {
    expect(approvalName('coder-0', Buffer.from([0x3f, 0xa9, 0xc1]))).toBe('coder-0-3fa9c1');
    const long = approvalName('A'.repeat(300), Buffer.from([1, 2, 3]));
    expect(long).toMatch(/^a{55}-010203$/);
  });

  test('label values: short valid names as they are, anything else shortened with a hash', () => {
    expect(approvalLabelValue('coder-0')).toBe('coder-0');
    expect(podSelector('coder-0')).toBe('sluice.io/pod=coder-0');
    const long = approvalLabelValue(`x${'y'.repeat(100)}`);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(approvalLabelValue(`x${'y'.repeat(101)}`));
    expect(approvalLabelValue('-weird/name')).toMatch(/^weird-name-[0-9a-f]{16}$/);
  });
});
