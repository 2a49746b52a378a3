// The decision cache's hits and misses as an SRE reads them: two counters on the sidecar's
// /metrics, present at 0 before any request, read from the engine when scraped; a request repeated
// byte for byte is answered from the cache and moves hits, a new one moves misses. Also: the
// engine's totals never go down when a bundle is swapped (a Prometheus counter must not).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { request } from 'node:http';
import { startHttpUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { defaultBundlePath, startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { readBundle } from '../../../lib/src/policy/bundle.ts';
import { agentInput } from '../../../policies/cases/cases.ts';

let upstream: TestUpstream;
let sidecar: TestSidecar;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  sidecar = await startTestSidecar({ resolve: { 'github.com:80': upstream.dial } });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

async function cacheCounters(): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  const read = (name: string) => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    if (!m) throw new Error(`${name} not exported`);
    return Number(m[1]);
  };
  return { hits: read('sluice_policy_decision_cache_hits_total'), misses: read('sluice_policy_decision_cache_misses_total') };
}

/** One plain HTTP request through the explicit proxy; the same path gives the same bytes every time. */
function proxied(path: string): Promise<number> {
  const proxy = new URL(sidecar.proxyUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.hostname, port: proxy.port, path: `http://github.com${path}`, headers: { host: 'github.com', 'user-agent': 'cache-test' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('decision cache metrics', () => {
  test('both series exist at 0 before any request', async () => {
    expect(sidecar.engine.decisionCache.enabled).toBe(true);
    expect(await cacheCounters()).toEqual({ hits: 0, misses: 0 });
  });

  test('a repeated request moves hits, a new one moves misses', async () => {
    const before = await cacheCounters();
    const first = await proxied('/sluice/cache-probe');
    const afterFirst = await cacheCounters();
    expect(afterFirst.misses).toBeGreaterThan(before.misses);
    expect(afterFirst.hits).toBe(before.hits);
    expect(await proxied('/sluice/cache-probe')).toBe(first);
    const afterRepeat = await cacheCounters();
    expect(afterRepeat.hits).toBe(afterFirst.hits + 1);
    expect(afterRepeat.misses).toBe(afterFirst.misses);
    await proxied('/sluice/another-path');
    const afterNew = await cacheCounters();
    expect(afterNew.misses).toBeGreaterThan(afterRepeat.misses);
    expect(afterNew.hits).toBe(afterRepeat.hits);
  });
});

describe('engine totals', () => {
  test('a bundle swap does not take back what the previous cache counted', async () => {
    const engine = new PolicyEngine();
    const bundle = await readBundle(defaultBundlePath);
    await engine.load(bundle);
    const input = agentInput({ method: 'GET', host: 'example.com', path: '/' });
    engine.evaluate(input);
    engine.evaluate(input);
    expect(engine.decisionCacheTotals).toEqual({ hits: 1, misses: 1 });
    await engine.load(bundle);
    expect(engine.decisionCache).toMatchObject({ hits: 0, misses: 0 });
    expect(engine.decisionCacheTotals).toEqual({ hits: 1, misses: 1 });
    engine.evaluate(input);
    expect(engine.decisionCacheTotals).toEqual({ hits: 1, misses: 2 });
  });
});
