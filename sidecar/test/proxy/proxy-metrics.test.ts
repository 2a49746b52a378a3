// sluice_requests_total{code} stays bounded whatever a custom policy returns: a code that does not
// look like one, or any past the budget of distinct codes, is counted as `other`.
import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import { MAX_CODES, boundedCode, registerProxyMetrics } from '../../src/proxy/proxy-metrics.ts';

describe('decision code label', () => {
  test('codes of the policy library and the sidecar pass unchanged', () => {
    const seen = new Set<string>();
    for (const code of ['git.push_requires_approval', 'net.not_allowlisted', 'sidecar.policy_error', 'credentials.aws_sts_unavailable', 'none']) {
      expect(boundedCode(code, seen)).toBe(code);
    }
  });

  test('a host, a path or free text in a code becomes other', () => {
    const seen = new Set<string>();
    for (const code of ['deny https://evil.example/x', 'Registry.Write', '/etc/passwd', '', 'a'.repeat(65), 'deny:10.0.0.1']) {
      expect(boundedCode(code, seen)).toBe('other');
    }
    expect(seen.size).toBe(0);
  });

  test('past the budget, new codes are other and known ones keep counting', () => {
    const seen = new Set<string>();
    for (let i = 0; i < MAX_CODES; i++) expect(boundedCode(`custom.rule_${i}`, seen)).toBe(`custom.rule_${i}`);
    expect(boundedCode('custom.one_too_many', seen)).toBe('other');
    expect(boundedCode('custom.rule_7', seen)).toBe('custom.rule_7');
  });

  test('the exported series never exceed the budget', async () => {
    const registry = new Registry();
    const metrics = registerProxyMetrics(registry);
    for (let i = 0; i < MAX_CODES * 3; i++) metrics.requests.inc({ action: 'deny', code: i % 2 ? `per.host_${i}` : `deny ${i}.example.com` });
    const [json] = (await registry.getMetricsAsJSON()).filter((m) => m.name === 'sluice_requests_total');
    const codes = new Set(json!.values.map((v) => v.labels.code));
    expect(codes.size).toBe(MAX_CODES + 1);
    expect(codes.has('other')).toBe(true);
  });
});
