// Every PromQL expression the chart ships — each dashboard panel and variable, each alert's rule
// and its measured signal — runs against a real Prometheus (tools/install.sh's, on loopback) that scraped two
// real sidecars and the real webhook after a scripted session (scripted-session.ts). Each must
// parse; each panel, variable and alert signal must return series; every metric any of them names
// must exist in what Prometheus scraped. A panel whose metric does not exist fails here.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { metricNames, shippedQueries } from '../../charts/src/promql-names.ts';
import type { ShippedQuery } from '../../charts/src/promql-names.ts';
import { PrometheusServer, PromQLError } from '../support/prometheus/prometheus.ts';
import { ScriptedSession } from './scripted-session.ts';

jest.setTimeout(180_000);

let session: ScriptedSession;
let prometheus: PrometheusServer;
let scraped = new Set<string>();

/** Grafana's variables as the test fills them: every cluster (`All`), the session's namespace and first pod. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '10m')
    .replaceAll('$cluster', '.*')
    .replaceAll('$namespace', 'agents')
    .replaceAll('$pod', 'coder-0');
}

/** `label_values(metric, label)` is Grafana's, not PromQL: the same question in PromQL. */
function promql(q: ShippedQuery): string {
  const m = /^label_values\((.+),\s*([a-z_]+)\)$/.exec(q.expr);
  return substitute(m ? `count by (${m[2]!}) (${m[1]!})` : q.expr);
}

beforeAll(async () => {
  [session, prometheus] = await Promise.all([ScriptedSession.start(), PrometheusServer.start({ interval: '1s' })]);
  prometheus.setTargets([
    ...session.pods.map((p) => ({ address: `127.0.0.1:${p.sidecar.addresses.admin.port}`, labels: { namespace: 'agents', pod: p.name, container: 'sluice-proxy' } })),
    { address: `127.0.0.1:${session.env.webhook.metricsPort}`, labels: { namespace: 'sluice-system', pod: 'sluice-webhook-0', container: 'sluice-webhook' } },
  ]);
  await prometheus.waitFor('count(up == 1)', (s) => Number(s[0]?.value[1]) === 3);
  await session.run();
  // Two scrapes after the session ended, so every counter it moved has a rate.
  const end = Date.now() / 1000;
  await prometheus.waitFor('min(timestamp(up))', (s) => Number(s[0]?.value[1]) > end + 2);
  scraped = new Set(await prometheus.metricNames());
});

afterAll(async () => {
  await prometheus?.stop();
  await session?.stop();
});

describe('the scripted session', () => {
  test('did what it says', () => {
    expect(session.log.statuses).toMatchObject({
      denied: 403,
      allowed: 200,
      masked: 200,
      'kubernetes read': 200,
      'held then approved': 200,
      'held, granted for the session': 200,
      'privileged pod': 403,
      'malformed review': 400,
    });
    expect(session.log.statuses['aws without a role']).toBeGreaterThanOrEqual(500);
    expect(session.log.statuses['upstream down']).toBe(502);
    expect(session.log.statuses['held until expired']).toBe(403);
    expect(session.log.statuses['coder-1 held without an API']).toBeGreaterThanOrEqual(400);
    expect(session.log.statuses['coder-1 after the spool filled']).toBe(503);
  });

  test('Prometheus scraped every target', async () => {
    const targets = await prometheus.targets();
    expect(targets.map((t) => [t.labels.pod, t.health])).toEqual(expect.arrayContaining([['coder-0', 'up'], ['coder-1', 'up'], ['sluice-webhook-0', 'up']]));
  });
});

const queries = shippedQueries();

describe('every shipped query against the real Prometheus', () => {
  test('there are queries from every dashboard and every alert', () => {
    expect(new Set(queries.filter((q) => q.kind === 'panel').map((q) => q.where.split(' / ')[1])).size).toBe(3);
    expect(queries.filter((q) => q.kind === 'alert-expr').length).toBeGreaterThan(15);
  });

  test.each(queries.map((q) => [`${q.where} [${q.kind}]`, q] as const))('%s', async (_name, q) => {
    const missing = metricNames(q.expr).filter((n) => !scraped.has(n) && !scraped.has(`${n}_bucket`));
    expect(missing).toEqual([]);
    let samples;
    try {
      samples = await prometheus.query(promql(q));
    } catch (err) {
      if (err instanceof PromQLError) throw new Error(`${q.where}: Prometheus refused ${q.expr}: ${err.message}`, { cause: err });
      throw err;
    }
    if (q.kind !== 'alert-expr') expect(samples.length).toBeGreaterThan(0);
  });

  // A labelled series born on its first observation has no earlier sample, so increase() misses
  // that observation: the session's approvals showed as a NaN median until the sidecar exported
  // every outcome at zero from start-up (approvals/metrics.ts, audit/metrics.ts).
  // (Over the whole range, so not timing-dependent: the `Denied` stat is a 1m rate, 0/0 once traffic stops.)
  test('stats over the session read numbers, not NaN or No data: median time to decision, pushes failing', async () => {
    const values: Record<string, number[]> = {};
    for (const title of ['Median time to decision', 'Audit pushes failing']) {
      const q = queries.find((x) => x.kind === 'panel' && x.where.endsWith(` / ${title}`));
      expect(q).toBeDefined();
      values[title] = (await prometheus.query(promql(q!))).map((s) => Number(s.value[1]));
    }
    for (const [title, v] of Object.entries(values)) {
      expect({ title, finite: v.length === 1 && Number.isFinite(v[0]) }).toEqual({ title, finite: true });
    }
  });

  test('a query naming a metric nobody exports fails this test’s checks', async () => {
    const q: ShippedQuery = { where: 'probe', kind: 'panel', expr: 'sum(rate(sluice_requests_totl[1m]))' };
    expect(metricNames(q.expr).filter((n) => !scraped.has(n))).toEqual(['sluice_requests_totl']);
    expect(await prometheus.query(promql(q))).toEqual([]);
    await expect(prometheus.query('sum(rate(sluice_requests_total[1m])')).rejects.toThrow(PromQLError);
  });
});
