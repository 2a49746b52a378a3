// sluice_requests_total{code} stays bounded whatever a custom policy returns: a code that does not
// look like one, or any past the budget of distinct codes, is counted as `other`.
import { describe, expect, test } from '@jest/globals';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../src/proxy/hot-metrics.ts';
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

// The per-request series are kept out of prom-client's per-call work (hot-metrics.ts): what a
// scrape reads must be what prom-client itself would have exported for the same updates.
describe('per-request series read as prom-client would export them', () => {
  test('a bucket histogram exports the same text as a prom-client histogram', async () => {
    const buckets = [0.00005, 0.0001, 0.001, 0.01, 1];
    const ours = new Registry();
    const theirs = new Registry();
    const h = new BucketHistogram({ name: 'x_seconds', help: 'h', buckets, registers: [ours] });
    const p = new Histogram({ name: 'x_seconds', help: 'h', buckets, registers: [theirs] });
    for (const v of [0, 0.00005, 0.00007, 0.0001, 0.5, 1, 2, 40, 0.003]) {
      h.observe(v);
      p.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(() => h.observe(Number.NaN)).toThrow(TypeError);
  });

  test('requests and bytes counted since the last read are all in the next one', async () => {
    const registry = new Registry();
    const metrics = registerProxyMetrics(registry);
    for (let i = 0; i < 5; i++) metrics.requests.inc({ action: 'allow', code: 'net.allowlisted' });
    metrics.requests.inc({ action: 'deny', code: 'net.not_allowlisted' });
    metrics.bytes.add('out', 10);
    metrics.bytes.add('in', 300);
    const read = async (name: string) => (await registry.getMetricsAsJSON()).find((m) => m.name === name)!.values.map((v) => [v.labels, v.value]);
    expect(await read('sluice_requests_total')).toEqual([
      [{ action: 'allow', code: 'net.allowlisted' }, 5],
      [{ action: 'deny', code: 'net.not_allowlisted' }, 1],
    ]);
    metrics.requests.inc({ action: 'allow', code: 'net.allowlisted' });
    metrics.bytes.add('in', 1);
    expect(await read('sluice_requests_total')).toEqual([
      [{ action: 'allow', code: 'net.allowlisted' }, 6],
      [{ action: 'deny', code: 'net.not_allowlisted' }, 1],
    ]);
    expect(await read('sluice_proxied_bytes_total')).toEqual([
      [{ direction: 'in' }, 301],
      [{ direction: 'out' }, 10],
    ]);
  });
});
