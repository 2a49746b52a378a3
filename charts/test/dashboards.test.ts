// The dashboards as Grafana reads the generated JSON: every one has the `cluster` variable and
// every metric selector filters on it; Overview links to Pod and Approvals, and back; per-pod
// panels link a series to its pod; audit shipping health (store, spool state, push results) is
// on the Overview and Pod dashboards; the Audit trail dashboard reads the pod's events from the log
// store. (Every PromQL runs against a real Prometheus in e2e/chart/promql.test.ts, every LogsQL
// against a real VictoriaLogs in e2e/audit/investigator-questions.test.ts.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { DASHBOARDS } from '../src/dashboards/index.ts';
import { LOGS_PLUGIN, POD_DATA_LINK, dashboardLogsQueries, dashboardQueries } from '../src/dashboards/panels.ts';
import type { DashboardJson } from '../src/dashboards/panels.ts';
import { CHART } from './support/helm.ts';

interface Json extends DashboardJson {
  uid: string;
  links?: { title: string; url: string; includeVars: boolean; keepTime: boolean }[];
  panels?: { title?: string; targets?: { expr?: string }[]; fieldConfig?: { defaults?: { links?: { url: string }[] } } }[];
}

const dashboards = DASHBOARDS.map((d) => JSON.parse(readFileSync(join(CHART, 'dashboards', d.file), 'utf8')) as Json);
const byUid = (uid: string) => dashboards.find((d) => d.uid === uid)!;
const SELECTOR = /\b(sluice_[a-z0-9_]+|up|process_[a-z0-9_]+)(\{[^}]*\})?/g;

describe('dashboards', () => {
  test.each(dashboards.map((d) => [d.title!, d] as const))('%s: a cluster variable, and every metric selector filters on it', (_t, d) => {
    const variables = d.templating!.list!.map((v) => v.name);
    expect(variables.filter((v) => v !== 'logs').slice(0, 2)).toEqual(['datasource', 'cluster']);
    const unfiltered = dashboardQueries(d)
      .filter((q) => !q.where.endsWith('variable cluster'))
      .flatMap((q) => [...q.expr.matchAll(SELECTOR)].filter((m) => !(m[2] ?? '').includes('cluster=~"$cluster"')).map((m) => `${q.where}: ${m[0]}`));
    expect(unfiltered).toEqual([]);
  });

  test('Overview → Pod → Approvals and back, keeping the variables and the time range', () => {
    const links = (uid: string) => (byUid(uid).links ?? []).map((l) => [l.title, l.url, l.includeVars, l.keepTime]);
    expect(links('sluice-overview')).toEqual([
      ['Pod', '/d/sluice-pod', true, true],
      ['Approvals', '/d/sluice-approvals', true, true],
    ]);
    expect(links('sluice-pod')).toEqual([
      ['Overview', '/d/sluice-overview', true, true],
      ['Approvals', '/d/sluice-approvals', true, true],
      ['Audit trail', '/d/sluice-audit-trail', true, true],
    ]);
    expect(links('sluice-approvals').map((l) => l[0])).toEqual(['Overview', 'Pod']);
  });

  test('per-pod series link to that pod’s dashboard', () => {
    const linked = (uid: string) => (byUid(uid).panels ?? []).filter((p) => p.fieldConfig?.defaults?.links?.some((l) => l.url === POD_DATA_LINK)).map((p) => p.title);
    expect(linked('sluice-overview')).toEqual(expect.arrayContaining(['Audit lag', 'Audit spool fill']));
    expect(linked('sluice-approvals')).toEqual(expect.arrayContaining(['Pending by pod', 'Oldest wait by pod']));
    expect(POD_DATA_LINK).toContain('var-namespace=${__field.labels.namespace}&var-pod=${__field.labels.pod}');
  });

  test('audit shipping health: store, spool state and push results on Overview and Pod', () => {
    for (const uid of ['sluice-overview', 'sluice-pod']) {
      const exprs = dashboardQueries(byUid(uid)).map((q) => q.expr).join('\n');
      for (const metric of ['sluice_audit_pushes_total', 'sluice_audit_store_info', 'sluice_audit_spool_state', 'sluice_audit_oldest_unshipped_age_seconds']) expect(exprs).toContain(metric);
    }
  });
});

describe('the Audit trail dashboard', () => {
  const d = byUid('sluice-audit-trail');

  test('reads the audit store through a VictoriaLogs datasource variable, one pod at a time', () => {
    expect(d.templating!.list!.find((v) => v.name === 'logs')).toMatchObject({ type: 'datasource', query: LOGS_PLUGIN });
    const logs = dashboardLogsQueries(d);
    expect(logs.length).toBeGreaterThanOrEqual(7);
    for (const q of logs) expect(q.expr.startsWith('_stream:{namespace="$namespace",pod="$pod"}')).toBe(true);
    // LogsQL is not PromQL: none of it reaches the Prometheus checks.
    expect(dashboardQueries(d).every((q) => q.where.includes('/ variable '))).toBe(true);
  });

  test('the Pod dashboard links to it', () => {
    expect((byUid('sluice-pod').links ?? []).map((l) => l.url)).toContain('/d/sluice-audit-trail');
  });
});
