// Every module that exports sluice metrics, registered on fresh registries so their names, types,
// help texts and label names can be read without running a sidecar or a webhook. The docs
// (docs/metrics.md) take type and help from here, so they cannot drift from the code; the unit
// test charts/test/metrics.test.ts also scans the sources for metric names no exporter here
// registers (a new module must be added to EXPORTERS). Never scrapes, never listens.
import { Registry } from 'prom-client';
import { registerApprovalMetrics } from '../../sidecar/src/approvals/metrics.ts';
import { registerAuditMetrics } from '../../sidecar/src/audit/metrics.ts';
import { registerCredentialMetrics } from '../../sidecar/src/credentials/metrics.ts';
import { registerDnsMetrics } from '../../sidecar/src/dns/dns-metrics.ts';
import { registerMaskingMetrics } from '../../sidecar/src/masking/metrics.ts';
import { registerPolicyMetrics } from '../../sidecar/src/policy/policy-metrics.ts';
import { registerProxyMetrics } from '../../sidecar/src/proxy/proxy-metrics.ts';
import { registerWebhookMetrics } from '../../webhook/src/metrics.ts';
import { buildInfo, registerBuildInfo } from '../../api/src/build-info.ts';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';
export type Component = 'sidecar' | 'webhook';

export interface Exporter {
  component: Component;
  /** area heading in docs/metrics.md */
  area: string;
  source: string;
  register(registry: Registry): unknown;
}

export const EXPORTERS: readonly Exporter[] = [
  { component: 'sidecar', area: 'Requests and connections', source: 'sidecar/src/proxy/proxy-metrics.ts', register: registerProxyMetrics },
  { component: 'sidecar', area: 'Policy', source: 'sidecar/src/policy/policy-metrics.ts', register: registerPolicyMetrics },
  { component: 'sidecar', area: 'DNS', source: 'sidecar/src/dns/dns-metrics.ts', register: registerDnsMetrics },
  { component: 'sidecar', area: 'Approvals', source: 'sidecar/src/approvals/metrics.ts', register: registerApprovalMetrics },
  { component: 'sidecar', area: 'Masking', source: 'sidecar/src/masking/metrics.ts', register: registerMaskingMetrics },
  { component: 'sidecar', area: 'Credentials', source: 'sidecar/src/credentials/metrics.ts', register: (r) => registerCredentialMetrics(r) },
  { component: 'sidecar', area: 'Audit', source: 'sidecar/src/audit/metrics.ts', register: registerAuditMetrics },
  { component: 'webhook', area: 'Admission webhook', source: 'webhook/src/metrics.ts', register: registerWebhookMetrics },
  // Both components export it; listed once.
  { component: 'sidecar', area: 'Build (sidecar and webhook)', source: 'api/src/build-info.ts', register: (r) => registerBuildInfo(r, buildInfo('sidecar')) },
];

export interface ExportedMetric {
  name: string;
  type: MetricType;
  help: string;
  labelNames: string[];
  component: Component;
  area: string;
  source: string;
}

interface ClientMetric {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/** Every sluice metric the exporters register, in EXPORTERS order. */
export async function exportedMetrics(): Promise<ExportedMetric[]> {
  const out: ExportedMetric[] = [];
  for (const e of EXPORTERS) {
    const registry = new Registry();
    e.register(registry);
    for (const json of await registry.getMetricsAsJSON()) {
      const metric = registry.getSingleMetric(json.name) as unknown as ClientMetric;
      out.push({
        name: json.name,
        type: String(json.type) as MetricType,
        help: json.help,
        labelNames: [...(metric.labelNames ?? [])],
        component: e.component,
        area: e.area,
        source: e.source,
      });
    }
  }
  return out;
}

/** Series names a metric produces in Prometheus (histograms expand to _bucket/_sum/_count). */
export function seriesNames(m: Pick<ExportedMetric, 'name' | 'type'>): string[] {
  return m.type === 'histogram' || m.type === 'summary' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
}
