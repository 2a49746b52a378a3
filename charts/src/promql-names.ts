// Which metrics a PromQL expression reads, and every expression the chart ships (dashboard
// panels and variables, alert rules and their signals), for the docs' "used by" column and the
// tests that prove each one against the exporters and a real Prometheus. Pure string work.
import { ALERTS } from './alerts.ts';
import { DASHBOARDS } from './dashboards/index.ts';
import { dashboardQueries } from './dashboards/panels.ts';
import type { DashboardJson } from './dashboards/panels.ts';

const METRIC = /\b(sluice_[a-z0-9_]+|up|process_[a-z0-9_]+|nodejs_[a-z0-9_]+)\b/g;

/** Metric names (histogram series folded to the histogram's name) an expression selects. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(METRIC)) names.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
  return [...names].sort();
}

export interface ShippedQuery {
  /** "<dashboard> / <panel>" or "alert <name>" */
  where: string;
  expr: string;
  /** an alert's full expression: it must parse, and is empty on a healthy system */
  kind: 'panel' | 'variable' | 'alert-signal' | 'alert-expr';
}

/** Every PromQL expression in the shipped dashboards (as built) and alert rules. */
export function shippedQueries(): ShippedQuery[] {
  const out: ShippedQuery[] = [];
  for (const d of DASHBOARDS) {
    for (const q of dashboardQueries(d.build() as DashboardJson)) out.push({ ...q, kind: q.where.includes('/ variable ') ? 'variable' : 'panel' });
  }
  for (const a of ALERTS) {
    out.push({ where: `alert ${a.alert}`, expr: a.signal, kind: 'alert-signal' });
    out.push({ where: `alert ${a.alert}`, expr: a.expr, kind: 'alert-expr' });
  }
  return out;
}

/** metric → where it is used ("Overview", "SluiceDenySpike", …), for docs/metrics.md. */
export function metricUsage(): Map<string, string[]> {
  const usage = new Map<string, Set<string>>();
  for (const q of shippedQueries()) {
    const label = q.where.startsWith('alert ') ? q.where.slice('alert '.length) : `${q.where.replace(/^sluice \/ /, '').split(' / ')[0]!} dashboard`;
    for (const name of metricNames(q.expr)) {
      if (!usage.has(name)) usage.set(name, new Set());
      usage.get(name)!.add(label);
    }
  }
  return new Map([...usage].map(([k, v]) => [k, [...v].sort()]));
}
