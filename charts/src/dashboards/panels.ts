// Small builders over @grafana/grafana-foundation-sdk so each dashboard reads as a list of
// questions and their PromQL. Every query goes through `q()`, which is how the tests find them
// all; every panel uses the dashboard's `datasource` variable and every dashboard has a `cluster`
// variable (every selector filters on it; `.*` also matches a Prometheus without the label).
// Dashboards link to each other, and per-pod panels link a series to that pod's dashboard.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import { DashboardBuilder, DashboardLinkBuilder, DashboardLinkType, DatasourceVariableBuilder, QueryVariableBuilder, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard, Panel } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as LogsBuilder } from '@grafana/grafana-foundation-sdk/logs';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** The VictoriaLogs datasource (its Grafana plugin) of the audit-trail dashboard: LogsQL queries. */
export const LOGS_PLUGIN = 'victoriametrics-logs-datasource';
export const LOGS_DATASOURCE = { type: LOGS_PLUGIN, uid: '${logs}' };

/** The selector every query starts with: the dashboard's cluster variable. */
export const CLUSTER = 'cluster=~"$cluster"';

/** The `cluster` variable: from sluice_build_info, which every sidecar and webhook exports. */
export const CLUSTER_VARIABLE = { name: 'cluster', label: 'Cluster', query: 'label_values(sluice_build_info, cluster)', multi: true };

/** Dashboard uids, for links. */
export const UIDS = { overview: 'sluice-overview', pod: 'sluice-pod', approvals: 'sluice-approvals', auditTrail: 'sluice-audit-trail' } as const;

/** A series' pod dashboard, with the series' namespace and pod, the cluster and the time range. */
export const POD_DATA_LINK = `/d/${UIDS.pod}/sluice-pod?\${__url_time_range}&\${datasource:queryparam}&\${cluster:queryparam}&var-namespace=\${__field.labels.namespace}&var-pod=\${__field.labels.pod}`;

export interface Query {
  expr: string;
  legend?: string;
}

export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  /** width in grid units (24 = full) */
  width?: number;
  /** logs and table panels query the audit store (LogsQL), the others Prometheus */
  kind?: 'timeseries' | 'stat' | 'logs' | 'table';
  /** Series carry namespace and pod: clicking one opens that pod's dashboard. */
  podLink?: boolean;
}

export function q(expr: string, legend?: string): Query {
  return legend === undefined ? { expr } : { expr, legend };
}

function targets(queries: Query[], instant: boolean): cog.Builder<cog.Dataquery>[] {
  return queries.map((query, i) => {
    const b = new DataqueryBuilder()
      .datasource(DATASOURCE)
      .expr(query.expr)
      .refId(String.fromCharCode(65 + i))
      .legendFormat(query.legend ?? '__auto');
    return instant ? b.instant() : b.range();
  });
}

/** A LogsQL query as the VictoriaLogs plugin stores it (no typed builder exists for the plugin). */
class LogsQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly query: { refId: string; expr: string; queryType: 'instant' | 'range' };
  constructor(refId: string, expr: string, queryType: 'instant' | 'range') {
    this.query = { refId, expr, queryType };
  }
  build(): cog.Dataquery {
    return { datasource: LOGS_DATASOURCE, ...this.query, _implementsDataqueryVariant: () => undefined } as cog.Dataquery;
  }
}

function logsTargets(queries: Query[], queryType: 'instant' | 'range'): cog.Builder<cog.Dataquery>[] {
  return queries.map((query, i) => new LogsQueryBuilder(String.fromCharCode(65 + i), query.expr, queryType));
}

export function panel(spec: PanelSpec): cog.Builder<Panel> {
  if (spec.kind === 'logs') {
    return new LogsBuilder()
      .title(spec.title)
      .description(spec.description)
      .datasource(LOGS_DATASOURCE)
      .span(spec.width ?? 24)
      .height(12)
      .showTime(true)
      .wrapLogMessage(true)
      .prettifyLogMessage(true)
      .enableLogDetails(true)
      .targets(logsTargets(spec.queries, 'range'));
  }
  if (spec.kind === 'table') {
    return new TableBuilder()
      .title(spec.title)
      .description(spec.description)
      .datasource(LOGS_DATASOURCE)
      .span(spec.width ?? 12)
      .height(8)
      .targets(logsTargets(spec.queries, 'instant'));
  }
  if (spec.kind === 'stat') {
    return new StatBuilder()
      .title(spec.title)
      .description(spec.description)
      .datasource(DATASOURCE)
      .unit(spec.unit)
      .span(spec.width ?? 6)
      .height(4)
      .targets(targets(spec.queries, true));
  }
  const b = new TimeseriesBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.width ?? 12)
    .height(8)
    .targets(targets(spec.queries, false));
  if (spec.podLink) b.dataLinks([new DashboardLinkBuilder('Open this pod').type(DashboardLinkType.Link).url(POD_DATA_LINK)]);
  return b;
}

export interface Section {
  row: string;
  panels: PanelSpec[];
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  /** variables after `datasource` and `cluster`, each a label_values() over a sluice metric */
  variables: { name: string; label: string; query: string; multi: boolean }[];
  /** the other dashboards this one links to (carrying the variables and the time range) */
  links: { title: string; uid: string; tooltip: string }[];
  /** a `logs` datasource variable for the audit store (VictoriaLogs) */
  logs?: boolean;
  sections: Section[];
}

export function buildDashboard(spec: DashboardSpec): Dashboard {
  const b = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags(['sluice'])
    .editable()
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'));
  if (spec.logs) b.withVariable(new DatasourceVariableBuilder('logs').label('Audit store').type(LOGS_PLUGIN));
  for (const l of spec.links) {
    b.link(new DashboardLinkBuilder(l.title).type(DashboardLinkType.Link).url(`/d/${l.uid}`).tooltip(l.tooltip).icon('dashboard').includeVars(true).keepTime(true));
  }
  for (const v of [CLUSTER_VARIABLE, ...spec.variables]) {
    const variable = new QueryVariableBuilder(v.name).label(v.label).datasource(DATASOURCE).query(v.query).definition(v.query).refresh(2).sort(1);
    b.withVariable(v.multi ? variable.multi(true).includeAll(true).allValue('.*') : variable);
  }
  for (const section of spec.sections) {
    b.withRow(new RowBuilder(section.row));
    for (const p of section.panels) b.withPanel(panel(p));
  }
  return b.build();
}

/** The parts of a dashboard's JSON that hold PromQL (as Grafana reads the committed file). */
export interface DashboardJson {
  title?: string;
  panels?: { title?: string; targets?: { expr?: string; datasource?: { type?: string } }[] }[];
  templating?: { list?: { type?: string; name?: string; query?: unknown }[] };
}

/** Every PromQL expression in a dashboard's JSON: panel targets and query variables. */
export function dashboardQueries(d: DashboardJson): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels ?? []) {
    for (const t of p.targets ?? []) if (t.expr && t.datasource?.type !== LOGS_PLUGIN) out.push({ where: `${d.title ?? '?'} / ${p.title ?? '?'}`, expr: t.expr });
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'query' && typeof v.query === 'string') out.push({ where: `${d.title ?? '?'} / variable ${v.name ?? '?'}`, expr: v.query });
  }
  return out;
}

/** Every LogsQL expression in a dashboard's JSON (targets of the audit store's datasource). */
export function dashboardLogsQueries(d: DashboardJson): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels ?? []) {
    for (const t of p.targets ?? []) if (t.expr && t.datasource?.type === LOGS_PLUGIN) out.push({ where: `${d.title ?? '?'} / ${p.title ?? '?'}`, expr: t.expr });
  }
  return out;
}
