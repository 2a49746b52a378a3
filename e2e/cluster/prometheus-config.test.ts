// The scrape configs e2e/cluster/prometheus.ts derives from the chart's rendered PodMonitor and
// ServiceMonitor: what the Prometheus Operator generates for them (prometheus-operator
// pkg/prometheus/promcfg.go), fields it cannot translate refused, and the result loaded by the
// Prometheus tools/install.sh builds (Kubernetes discovery compiled in). No root, no node.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, jest, test } from '@jest/globals';
import { stringify as toYaml } from 'yaml';
import { templateText } from '../../charts/test/support/helm.ts';
import { TestCA } from '../support/kube/pki.ts';
import { PrometheusServer } from '../support/prometheus/prometheus.ts';
import { CLUSTER_PROMETHEUS, UnsupportedMonitorField, dashboardPromql, monitorScrapeConfigs, monitorsIn } from './prometheus.ts';
import type { MonitorObject } from './prometheus.ts';

jest.setTimeout(60_000);

const ACCESS = { url: 'https://10.247.1.1:443', caFile: '/tmp/ca.crt', tokenFile: '/tmp/token' };
const MONITORING = { monitoring: { podMonitor: { enabled: true, interval: '2s' }, serviceMonitor: { enabled: true, interval: '2s' } } };
const SD_ACCESS = { api_server: ACCESS.url, tls_config: { ca_file: ACCESS.caFile }, authorization: { credentials_file: ACCESS.tokenFile } };

describe('the chart’s monitors as the Operator would scrape them', () => {
  test('PodMonitor (agents.namespaces set): pods in those namespaces with a sluice-admin port, labelled namespace/pod/container, job <ns>/<name>', async () => {
    const monitors = monitorsIn(await templateText({ ...MONITORING, agents: { namespaces: ['agents', 'team-b'] } }));
    expect(monitors.map((m) => m.kind).sort()).toEqual(['PodMonitor', 'ServiceMonitor']);
    const pod = monitorScrapeConfigs(monitors.filter((m) => m.kind === 'PodMonitor'), ACCESS);
    // The Operator's output for `selector: {}`, `namespaceSelector.matchNames`, one endpoint by port name.
    expect(pod).toEqual([
      {
        job_name: 'podMonitor/sluice-system/sluice-sidecars/0',
        honor_labels: false,
        kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: ['agents', 'team-b'] }, ...SD_ACCESS }],
        scrape_interval: '2s',
        metrics_path: '/metrics',
        relabel_configs: [
          { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
          { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
          { action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'sluice-admin' },
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
          { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
          { target_label: 'job', replacement: 'sluice-system/sluice-sidecars' },
          { target_label: 'endpoint', replacement: 'sluice-admin' },
        ],
      },
    ]);
  });

  test('PodMonitor without agents.namespaces: every namespace (namespaceSelector.any), no namespaces list', async () => {
    const [pod] = monitorScrapeConfigs(monitorsIn(await templateText(MONITORING)).filter((m) => m.kind === 'PodMonitor'), ACCESS);
    expect(pod!.kubernetes_sd_configs).toEqual([{ role: 'pod', ...SD_ACCESS }]);
  });

  test('ServiceMonitor: the webhook Service’s endpoints by its selector labels and port "metrics", pod and service labelled, job = service name', async () => {
    const [sm] = monitorsIn(await templateText(MONITORING)).filter((m) => m.kind === 'ServiceMonitor');
    const [cfg] = monitorScrapeConfigs([sm!], ACCESS);
    const relabel = cfg!.relabel_configs as Record<string, unknown>[];
    expect(cfg!.kubernetes_sd_configs).toEqual([{ role: 'endpoints', namespaces: { names: ['sluice-system'] }, ...SD_ACCESS }]);
    // One keep per selector label, sorted, with the label-present guard.
    const keeps = relabel.filter((r) => r.action === 'keep');
    const selector = Object.keys(sm!.spec.selector!.matchLabels!).sort();
    expect(keeps.slice(0, selector.length).map((r) => (r.source_labels as string[])[0])).toEqual(selector.map((k) => `__meta_kubernetes_service_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`));
    expect(keeps.at(-1)).toEqual({ action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: 'metrics' });
    expect(relabel).toContainEqual({ source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' });
    expect(relabel.at(-1)).toEqual({ target_label: 'endpoint', replacement: 'metrics' });
  });

  test('selector expressions become the Operator’s keep/drop rules', () => {
    const m: MonitorObject = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: 'm', namespace: 'ns' },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'x' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['a', 'b'] }, { key: 'gone', operator: 'DoesNotExist' }] },
        podMetricsEndpoints: [{ port: 'p' }],
        podTargetLabels: ['team'],
      },
    };
    const relabel = monitorScrapeConfigs([m], ACCESS)[0]!.relabel_configs as Record<string, unknown>[];
    expect(relabel).toContainEqual({ action: 'keep', source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name', '__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name'], regex: '(x);true' });
    expect(relabel).toContainEqual({ action: 'drop', source_labels: ['__meta_kubernetes_pod_label_tier', '__meta_kubernetes_pod_labelpresent_tier'], regex: '(a|b);true' });
    expect(relabel).toContainEqual({ action: 'drop', source_labels: ['__meta_kubernetes_pod_labelpresent_gone'], regex: 'true' });
    expect(relabel).toContainEqual({ source_labels: ['__meta_kubernetes_pod_label_team'], target_label: 'team', regex: '(.+)', replacement: '${1}' });
    // No namespaceSelector: the monitor's own namespace.
    expect((monitorScrapeConfigs([m], ACCESS)[0]!.kubernetes_sd_configs as { namespaces: unknown }[])[0]!.namespaces).toEqual({ names: ['ns'] });
  });

  test('a field it does not translate is refused, not dropped (relabelings, sampleLimit, another API version)', () => {
    const base: MonitorObject = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { name: 'm', namespace: 'ns' }, spec: { podMetricsEndpoints: [{ port: 'p' }] } };
    const withRelabel = { ...base, spec: { podMetricsEndpoints: [{ port: 'p', relabelings: [{ action: 'drop' }] }] } } as unknown as MonitorObject;
    expect(() => monitorScrapeConfigs([withRelabel], ACCESS)).toThrow(UnsupportedMonitorField);
    expect(() => monitorScrapeConfigs([withRelabel], ACCESS)).toThrow(/relabelings/);
    const withLimit = { ...base, spec: { ...base.spec, sampleLimit: 10 } } as unknown as MonitorObject;
    expect(() => monitorScrapeConfigs([withLimit], ACCESS)).toThrow(/sampleLimit/);
    expect(() => monitorScrapeConfigs([{ ...base, apiVersion: 'monitoring.coreos.com/v2' }], ACCESS)).toThrow(/apiVersion/);
    expect(monitorScrapeConfigs([base], ACCESS)).toHaveLength(1);
  });

  test('dashboard queries as Grafana sends them: variables filled, label_values as PromQL', () => {
    const v = { namespace: 'agents', pod: 'coder-1' };
    expect(dashboardPromql({ where: 'x', kind: 'panel', expr: 'sum(rate(a{cluster=~"$cluster",namespace="$namespace",pod="$pod"}[$__rate_interval]))' }, v)).toBe('sum(rate(a{cluster=~".*",namespace="agents",pod="coder-1"}[1m]))');
    expect(dashboardPromql({ where: 'x', kind: 'variable', expr: 'label_values(sluice_policy_loaded{cluster=~"$cluster"}, namespace)' }, v)).toBe('count by (namespace) (sluice_policy_loaded{cluster=~".*"})');
  });
});

describe('the Prometheus tools/install.sh builds', () => {
  test('loads the generated kubernetes_sd_configs (Debian’s 2.42 has no Kubernetes discovery)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-prom-config-'));
    writeFileSync(join(dir, 'token'), 'not-a-real-token');
    writeFileSync(join(dir, 'ca.crt'), (await TestCA.create('prometheus config test')).certPem);
    const access = { url: 'https://127.0.0.1:1', caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token') };
    const scrapeConfigs = monitorScrapeConfigs(monitorsIn(await templateText({ ...MONITORING, agents: { namespaces: ['agents'] } })), access);
    const prometheus = await PrometheusServer.start({ binary: CLUSTER_PROMETHEUS, scrapeConfigs });
    try {
      const res = await fetch(`${prometheus.url}/api/v1/status/config`);
      const loaded = ((await res.json()) as { data: { yaml: string } }).data.yaml;
      expect(loaded).toContain('job_name: podMonitor/sluice-system/sluice-sidecars/0');
      expect(loaded).toContain('kubernetes_sd_configs:');
      expect(loaded).toContain('role: pod');
      expect(loaded).toContain('job_name: serviceMonitor/sluice-system/sluice-webhook/0');
      expect(toYaml(scrapeConfigs)).toContain('sluice-admin');
    } finally {
      await prometheus.stop();
    }
  });
});
