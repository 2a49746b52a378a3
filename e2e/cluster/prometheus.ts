// Prometheus on the host of an e2e/cluster node, configured the way the Prometheus Operator would
// configure it from the chart's own PodMonitor and ServiceMonitor: `kubernetes_sd_configs` against
// the real API server (as a ServiceAccount with a kube-prometheus-like ClusterRole), the
// Operator's relabelling, and scrapes straight to pod IPs over the node's bridge.
//
// The translation (monitorScrapeConfigs) is pure: a rendered PodMonitor / ServiceMonitor in, the
// scrape configs the Operator generates for it out, following prometheus-operator's
// pkg/prometheus/promcfg.go (generatePodMonitorConfig / generateServiceMonitorConfig). A field it
// does not translate is refused (UnsupportedMonitorField), so a chart change that adds one fails
// the test instead of being scraped differently from what a user's Operator would do. The one
// part of the Operator's output left out is sharding (hashmod over __address__ with a single
// shard keeps every target).
//
// It never listens on anything but 127.0.0.1, never scrapes outside the node's pod subnet, and
// uses only the Prometheus built by tools/install.sh (Debian's has no Kubernetes discovery).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PrometheusServer } from '../support/prometheus/prometheus.ts';
import type { Sample } from '../support/prometheus/prometheus.ts';
import { metricNames, shippedQueries } from '../../charts/src/promql-names.ts';
import type { ShippedQuery } from '../../charts/src/promql-names.ts';
import type { KubeNode } from './node.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** tools/install.sh's Prometheus, with Kubernetes service discovery compiled in. */
export const CLUSTER_PROMETHEUS = join(ROOT, '.tools', 'bin', 'prometheus');

export class UnsupportedMonitorField extends Error {
  readonly code = 'SLUICE_MONITOR_FIELD_UNSUPPORTED';
  constructor(where: string, fields: string[]) {
    super(`${where}: ${fields.join(', ')} not translated into a scrape config (e2e/cluster/prometheus.ts); add the Operator's handling before the chart uses it`);
    this.name = 'UnsupportedMonitorField';
  }
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

interface MonitorEndpoint {
  port?: string;
  path?: string;
  interval?: string;
  scrapeTimeout?: string;
  scheme?: string;
  honorLabels?: boolean;
  filterRunning?: boolean;
}

/** A PodMonitor or ServiceMonitor as `helm template` renders it (monitoring.coreos.com/v1). */
export interface MonitorObject {
  apiVersion: string;
  kind: 'PodMonitor' | 'ServiceMonitor';
  metadata: { name: string; namespace: string };
  spec: {
    selector?: LabelSelector;
    namespaceSelector?: { any?: boolean; matchNames?: string[] };
    podMetricsEndpoints?: MonitorEndpoint[];
    endpoints?: MonitorEndpoint[];
    podTargetLabels?: string[];
    targetLabels?: string[];
    jobLabel?: string;
  };
}

/** How Prometheus reaches and authenticates to the API server for discovery. */
export interface ApiServerAccess {
  url: string;
  caFile: string;
  tokenFile: string;
}

export type ScrapeConfig = Record<string, unknown>;
type Relabel = Record<string, unknown>;

const SPEC_FIELDS = {
  PodMonitor: ['selector', 'namespaceSelector', 'podMetricsEndpoints', 'podTargetLabels', 'jobLabel'],
  ServiceMonitor: ['selector', 'namespaceSelector', 'endpoints', 'podTargetLabels', 'targetLabels', 'jobLabel'],
} as const;
const ENDPOINT_FIELDS = ['port', 'path', 'interval', 'scrapeTimeout', 'scheme', 'honorLabels', 'filterRunning'];

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

function refuseUnknown(where: string, obj: object, known: readonly string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length) throw new UnsupportedMonitorField(where, extra);
}

/** The Operator's selector relabelling (SelectorMechanism "Relabel", its default). */
function selectorRelabels(selector: LabelSelector | undefined, meta: 'pod' | 'service'): Relabel[] {
  const label = (k: string) => `__meta_kubernetes_${meta}_label_${sanitize(k)}`;
  const present = (k: string) => `__meta_kubernetes_${meta}_labelpresent_${sanitize(k)}`;
  const out: Relabel[] = [];
  for (const k of Object.keys(selector?.matchLabels ?? {}).sort()) {
    out.push({ action: 'keep', source_labels: [label(k), present(k)], regex: `(${selector!.matchLabels![k]});true` });
  }
  for (const e of selector?.matchExpressions ?? []) {
    if (e.operator === 'In' || e.operator === 'NotIn') out.push({ action: e.operator === 'In' ? 'keep' : 'drop', source_labels: [label(e.key), present(e.key)], regex: `(${(e.values ?? []).join('|')});true` });
    else out.push({ action: e.operator === 'Exists' ? 'keep' : 'drop', source_labels: [present(e.key)], regex: 'true' });
  }
  return out;
}

function sdConfig(m: MonitorObject, role: 'pod' | 'endpoints', access: ApiServerAccess): Record<string, unknown> {
  const ns = m.spec.namespaceSelector;
  // getNamespacesFromNamespaceSelector: any → every namespace; none named → the monitor's own.
  const names = ns?.any ? [] : ns?.matchNames?.length ? ns.matchNames : [m.metadata.namespace];
  return {
    role,
    ...(names.length ? { namespaces: { names } } : {}),
    api_server: access.url,
    tls_config: { ca_file: access.caFile },
    authorization: { credentials_file: access.tokenFile },
  };
}

function endpointSettings(ep: MonitorEndpoint): Record<string, unknown> {
  return {
    ...(ep.interval ? { scrape_interval: ep.interval } : {}),
    ...(ep.scrapeTimeout ? { scrape_timeout: ep.scrapeTimeout } : {}),
    ...(ep.path ? { metrics_path: ep.path } : {}),
    ...(ep.scheme ? { scheme: ep.scheme } : {}),
  };
}

const targetLabel = (source: string, target: string): Relabel => ({ source_labels: [source], target_label: target });
const copied = (meta: string, l: string): Relabel => ({ source_labels: [`${meta}${sanitize(l)}`], target_label: sanitize(l), regex: '(.+)', replacement: '${1}' });
const runningFilter: Relabel = { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' };

function podMonitorConfigs(m: MonitorObject, access: ApiServerAccess): ScrapeConfig[] {
  return (m.spec.podMetricsEndpoints ?? []).map((ep, i) => {
    refuseUnknown(`PodMonitor ${m.metadata.name} podMetricsEndpoints[${i}]`, ep, ENDPOINT_FIELDS);
    const relabel: Relabel[] = [targetLabel('job', '__tmp_prometheus_job_name')];
    if (ep.filterRunning ?? true) relabel.push(runningFilter);
    relabel.push(...selectorRelabels(m.spec.selector, 'pod'));
    if (ep.port) relabel.push({ action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port });
    relabel.push(targetLabel('__meta_kubernetes_namespace', 'namespace'), targetLabel('__meta_kubernetes_pod_container_name', 'container'), targetLabel('__meta_kubernetes_pod_name', 'pod'));
    for (const l of m.spec.podTargetLabels ?? []) relabel.push(copied('__meta_kubernetes_pod_label_', l));
    relabel.push({ target_label: 'job', replacement: `${m.metadata.namespace}/${m.metadata.name}` });
    if (m.spec.jobLabel) relabel.push({ ...copied('__meta_kubernetes_pod_label_', m.spec.jobLabel), target_label: 'job' });
    if (ep.port) relabel.push({ target_label: 'endpoint', replacement: ep.port });
    return {
      job_name: `podMonitor/${m.metadata.namespace}/${m.metadata.name}/${i}`,
      honor_labels: ep.honorLabels ?? false,
      kubernetes_sd_configs: [sdConfig(m, 'pod', access)],
      ...endpointSettings(ep),
      relabel_configs: relabel,
    };
  });
}

function serviceMonitorConfigs(m: MonitorObject, access: ApiServerAccess): ScrapeConfig[] {
  return (m.spec.endpoints ?? []).map((ep, i) => {
    refuseUnknown(`ServiceMonitor ${m.metadata.name} endpoints[${i}]`, ep, ENDPOINT_FIELDS);
    const relabel: Relabel[] = [targetLabel('job', '__tmp_prometheus_job_name'), ...selectorRelabels(m.spec.selector, 'service')];
    if (ep.port) relabel.push({ action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: ep.port });
    const kindName = ['__meta_kubernetes_endpoint_address_target_kind', '__meta_kubernetes_endpoint_address_target_name'];
    relabel.push(
      { source_labels: kindName, separator: ';', regex: 'Node;(.*)', replacement: '${1}', target_label: 'node' },
      { source_labels: kindName, separator: ';', regex: 'Pod;(.*)', replacement: '${1}', target_label: 'pod' },
      targetLabel('__meta_kubernetes_namespace', 'namespace'),
      targetLabel('__meta_kubernetes_service_name', 'service'),
      targetLabel('__meta_kubernetes_pod_name', 'pod'),
      targetLabel('__meta_kubernetes_pod_container_name', 'container'),
    );
    if (ep.filterRunning ?? true) relabel.push(runningFilter);
    for (const l of m.spec.targetLabels ?? []) relabel.push(copied('__meta_kubernetes_service_label_', l));
    for (const l of m.spec.podTargetLabels ?? []) relabel.push(copied('__meta_kubernetes_pod_label_', l));
    relabel.push({ source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' });
    if (m.spec.jobLabel) relabel.push({ ...copied('__meta_kubernetes_service_label_', m.spec.jobLabel), target_label: 'job' });
    if (ep.port) relabel.push({ target_label: 'endpoint', replacement: ep.port });
    return {
      job_name: `serviceMonitor/${m.metadata.namespace}/${m.metadata.name}/${i}`,
      honor_labels: ep.honorLabels ?? false,
      kubernetes_sd_configs: [sdConfig(m, 'endpoints', access)],
      ...endpointSettings(ep),
      relabel_configs: relabel,
    };
  });
}

/** The scrape configs the Prometheus Operator generates for these monitors (pure). */
export function monitorScrapeConfigs(monitors: MonitorObject[], access: ApiServerAccess): ScrapeConfig[] {
  return monitors.flatMap((m) => {
    if (m.apiVersion !== 'monitoring.coreos.com/v1') throw new UnsupportedMonitorField(`${m.kind} ${m.metadata.name}`, [`apiVersion ${m.apiVersion}`]);
    refuseUnknown(`${m.kind} ${m.metadata.name} spec`, m.spec, SPEC_FIELDS[m.kind]);
    return m.kind === 'PodMonitor' ? podMonitorConfigs(m, access) : serviceMonitorConfigs(m, access);
  });
}

/** The PodMonitors and ServiceMonitors in `helm template` output. */
export function monitorsIn(renderedYaml: string): MonitorObject[] {
  return parseAllDocuments(renderedYaml)
    .map((d) => d.toJS() as { kind?: string } | null)
    .filter((o): o is MonitorObject => o?.kind === 'PodMonitor' || o?.kind === 'ServiceMonitor');
}

/**
 * A dashboard query as Grafana would send it for one namespace and pod: its variables filled,
 * `label_values(m, l)` (Grafana's, not PromQL) as the equivalent PromQL.
 */
export function dashboardPromql(q: ShippedQuery, v: { namespace: string; pod: string; rateInterval?: string; range?: string }): string {
  const m = /^label_values\((.+),\s*([a-z_]+)\)$/.exec(q.expr);
  return (m ? `count by (${m[2]!}) (${m[1]!})` : q.expr)
    .replaceAll('$__rate_interval', v.rateInterval ?? '1m')
    .replaceAll('$__range', v.range ?? '10m')
    .replaceAll('$cluster', '.*')
    .replaceAll('$namespace', v.namespace)
    .replaceAll('$pod', v.pod);
}

// What kube-prometheus-stack's Prometheus may read for discovery (its ClusterRole, less nodes).
const DISCOVERY_RULES = [{ apiGroups: [''], resources: ['pods', 'services', 'endpoints'], verbs: ['get', 'list', 'watch'] }];

/** One dashboard query's answer: how many series, their values (a few), and the metrics it reads. */
export interface DashboardResult {
  where: string;
  kind: ShippedQuery['kind'];
  promql: string;
  series: number;
  values: string[];
  /** each metric the query reads, and whether a scraped target carried its HELP/TYPE (exported, even with no series yet) */
  metrics: { name: string; exported: boolean }[];
}

export interface TargetView {
  job: string;
  namespace: string;
  pod: string;
  container: string;
  health: string;
  scrapeUrl: string;
  lastError: string;
}

/** What a story step saw when Prometheus started. */
export interface PrometheusStarted {
  monitors: MonitorObject[];
  scrapeConfigs: ScrapeConfig[];
  targets: TargetView[];
  startMs: number;
}

/** What a story step saw when it ran every dashboard query. */
export interface DashboardsQueried {
  targets: TargetView[];
  results: DashboardResult[];
}

/** Prometheus for a node: its ServiceAccount and RBAC, a token, and the process scraping as the monitors say. */
export class ClusterPrometheus {
  readonly server: PrometheusServer;
  readonly scrapeConfigs: ScrapeConfig[];

  private constructor(server: PrometheusServer, scrapeConfigs: ScrapeConfig[]) {
    this.server = server;
    this.scrapeConfigs = scrapeConfigs;
  }

  static async start(node: KubeNode, monitors: MonitorObject[], o: { namespace?: string; interval?: string } = {}): Promise<ClusterPrometheus> {
    if (!existsSync(CLUSTER_PROMETHEUS)) throw new Error(`${CLUSTER_PROMETHEUS} is missing: run \`tools/install.sh prometheus\``);
    const ns = o.namespace ?? 'monitoring';
    const api = (method: string, path: string, body?: unknown) => node.cluster.request<Record<string, unknown>>('admin', method, path, body);
    const must = async (method: string, path: string, body: unknown) => {
      const res = await api(method, path, body);
      if (res.status >= 300 && res.status !== 409) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'prometheus' } });
    const rbac = '/apis/rbac.authorization.k8s.io/v1';
    await must('POST', `${rbac}/clusterroles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'e2e-prometheus' }, rules: DISCOVERY_RULES });
    await must('POST', `${rbac}/clusterrolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'e2e-prometheus' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'e2e-prometheus' },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: ns }],
    });
    const token = await must('POST', `/api/v1/namespaces/${ns}/serviceaccounts/prometheus/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    const dir = node.dir;
    const access: ApiServerAccess = { url: node.cluster.server, caFile: join(dir, 'prometheus-ca.crt'), tokenFile: join(dir, 'prometheus-token') };
    writeFileSync(access.caFile, node.cluster.ca.certPem);
    writeFileSync(access.tokenFile, String((token.status as { token: string }).token), { mode: 0o600 });
    const scrapeConfigs = monitorScrapeConfigs(monitors, access);
    const server = await PrometheusServer.start({ binary: CLUSTER_PROMETHEUS, interval: o.interval ?? '1s', scrapeConfigs });
    return new ClusterPrometheus(server, scrapeConfigs);
  }

  /** Active targets and their health, by the labels the relabelling gave them. */
  async targets(): Promise<TargetView[]> {
    return (await this.server.targets()).map((t) => ({ job: t.labels.job ?? '', namespace: t.labels.namespace ?? '', pod: t.labels.pod ?? '', container: t.labels.container ?? '', health: t.health, scrapeUrl: t.scrapeUrl, lastError: t.lastError }));
  }

  query(expr: string): Promise<Sample[]> {
    return this.server.query(expr);
  }

  /** The metric's HELP/TYPE as Prometheus last scraped it from any target (empty: no target exports it). */
  async metadata(metric: string): Promise<{ type: string; help: string }[]> {
    const res = await fetch(`${this.server.url}/api/v1/metadata?metric=${encodeURIComponent(metric)}`);
    const body = (await res.json()) as { data?: Record<string, { type: string; help: string }[]> };
    return body.data?.[metric] ?? [];
  }

  /** Waits (bounded) until every target was scraped again after now: what happened so far is in. */
  async settle(timeoutMs = 20_000): Promise<void> {
    const now = Date.now() / 1000;
    await this.server.waitFor('min(timestamp(up))', (s) => Number(s[0]?.value[1]) > now + 1, timeoutMs);
  }

  /** Every dashboard panel and variable query (charts/src/dashboards, as built), as Grafana sends it for one namespace and pod. */
  async dashboardResults(v: { namespace: string; pod: string }): Promise<DashboardResult[]> {
    const out: DashboardResult[] = [];
    for (const q of shippedQueries().filter((x) => x.kind === 'panel' || x.kind === 'variable')) {
      const promql = dashboardPromql(q, v);
      const samples = await this.server.query(promql);
      const metrics = await Promise.all(metricNames(q.expr).map(async (name) => ({ name, exported: (await this.metadata(name)).length > 0 })));
      out.push({ where: q.where, kind: q.kind, promql, series: samples.length, values: samples.slice(0, 4).map((s) => s.value[1]), metrics });
    }
    return out;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
