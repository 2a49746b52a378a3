// The audit alerts on what a real spool exports: a recorder behind a dead store writes at a steady
// rate, one scrape of its metrics per simulated minute becomes promtool's input series, and the
// generated rules must fire SluiceAuditSpoolFullSoon well before the recorder first refuses a record.
// The same load with `audit.store: none` (a ring that trims) must fire none of the audit alerts.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { Registry } from 'prom-client';
import { stringify as toYaml } from 'yaml';
import type { AuditRecord } from '../../api/src/index.ts';
import type { AuditConfigInput } from '../../sidecar/src/audit/config.ts';
import { registerAuditMetrics } from '../../sidecar/src/audit/metrics.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { expectedAlert } from '../src/alerts.ts';
import { CHART, REPO } from './support/helm.ts';

jest.setTimeout(120_000);

// tools/install.sh's promtool (the same Prometheus release e2e/cluster and the PromQL tests run).
const PROMTOOL = process.env.SLUICE_PROMTOOL ?? join(REPO, '.tools', 'bin', 'promtool');
const POD = { namespace: 'agents', pod: 'coder-0' };
const SERIES = ['sluice_audit_spool_bytes', 'sluice_audit_spool_unshipped_bytes', 'sluice_audit_spool_capacity_bytes', 'sluice_audit_oldest_unshipped_age_seconds'];
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const request = (i: number): AuditRecord => ({
  kind: 'request',
  pod: { namespace: POD.namespace, name: POD.pod },
  request: { method: 'GET', scheme: 'https', host: 'registry.npmjs.org', port: 443, path: `/pkg-${i}` },
  decision: { action: 'allow', code: 'registry.read', reason: 'package registries are read-only' },
});

function sample(text: string, name: string, labels = ''): number {
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

interface Run {
  /** metric selector (with the pod's labels) → one value per minute */
  series: Record<string, number[]>;
  /** the minute of the first refused record, if any */
  firstRefusal: number | undefined;
}

/** Four records a minute for `minutes` simulated minutes, scraping after each. */
async function simulate(store: AuditConfigInput['store'], minutes: number): Promise<Run> {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const registry = new Registry();
  const rec = new AuditRecorder(
    { spoolDir: tempDir('sluice-alert-spool-'), pod: { namespace: POD.namespace, name: POD.pod }, spool: { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, fsync: 'none' }, ...(store ? { store } : {}) },
    { metrics: registerAuditMetrics(registry), clock: () => now, stateCheckMs: 60_000 },
  );
  await rec.start();
  const series: Record<string, number[]> = {};
  const push = (key: string, v: number) => (series[key] ??= []).push(v);
  let firstRefusal: number | undefined;
  let n = 0;
  try {
    for (let minute = 0; minute < minutes; minute++) {
      now = Date.parse('2026-01-01T00:00:00Z') + minute * 60_000;
      for (let i = 0; i < 4; i++) await rec.record(request(n++)).catch(() => (firstRefusal ??= minute));
      const text = await registry.metrics();
      const labels = `namespace="${POD.namespace}",pod="${POD.pod}"`;
      for (const name of SERIES) push(`${name}{${labels}}`, sample(text, name));
      for (const type of ['none', 'loki']) push(`sluice_audit_store_info{type="${type}",${labels}}`, sample(text, 'sluice_audit_store_info', `{type="${type}"}`));
      push(`sluice_audit_append_errors_total{code="audit.spool_full",${labels}}`, sample(text, 'sluice_audit_append_errors_total', '{code="audit.spool_full"}'));
    }
  } finally {
    await rec.stop({ drainTimeoutMs: 10 });
  }
  return { series, firstRefusal };
}

function promtool(tests: unknown): Promise<{ code: number; output: string }> {
  const dir = tempDir('sluice-alert-rules-');
  writeFileSync(join(dir, 'rules.yaml'), readFileSync(join(CHART, 'alerts', 'sluice-alerts.yaml')));
  writeFileSync(join(dir, 'tests.yaml'), toYaml(tests, { lineWidth: 0 }));
  return new Promise((resolve) => {
    execFile(PROMTOOL, ['test', 'rules', 'tests.yaml'], { cwd: dir, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: `${stdout}${stderr}` }));
  });
}

const inputSeries = (run: Run) => Object.entries(run.series).map(([series, values]) => ({ series, values: values.join(' ') }));

describe('audit alerts on the series a real spool exports', () => {
  test('behind a dead store, SluiceAuditSpoolFullSoon fires at least 10 minutes before the first refused record', async () => {
    const run = await simulate({ type: 'loki', url: `http://127.0.0.1:${await closedPort()}`, retryInitialMs: 600_000, retryMaxMs: 600_000 }, 45);
    // The spool does refuse, later: the alert is about something that really happens.
    expect(run.firstRefusal).toBeDefined();
    const refusedAt = run.firstRefusal!;
    expect(refusedAt).toBeGreaterThan(15);
    expect(run.series[`sluice_audit_append_errors_total{code="audit.spool_full",namespace="agents",pod="coder-0"}`]!.slice(0, refusedAt).every((v) => v === 0)).toBe(true);
    // Measured by the spool with no acknowledgement ever: a minute per minute.
    expect(run.series['sluice_audit_oldest_unshipped_age_seconds{namespace="agents",pod="coder-0"}']!.slice(0, 4)).toEqual([0, 60, 120, 180]);
    const firing = [expectedAlert('SluiceAuditSpoolFullSoon', POD)];
    const res = await promtool({
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          name: 'dead store',
          interval: '1m',
          input_series: inputSeries(run),
          alert_rule_test: [
            { eval_time: `${refusedAt - 10}m`, alertname: 'SluiceAuditSpoolFullSoon', exp_alerts: firing },
            { eval_time: `${refusedAt - 1}m`, alertname: 'SluiceAuditSpoolFullSoon', exp_alerts: firing },
            // Not from the first minutes: nothing is old yet.
            { eval_time: '3m', alertname: 'SluiceAuditSpoolFullSoon', exp_alerts: [] },
            { eval_time: `${refusedAt + 3}m`, alertname: 'SluiceAuditWriteFailing', exp_alerts: [expectedAlert('SluiceAuditWriteFailing', { ...POD, code: 'audit.spool_full' })] },
          ],
        },
      ],
    });
    expect(res.output).toContain('SUCCESS');
    expect(res.code).toBe(0);
  });

  test('with store none the ring wraps and serves; no audit alert fires', async () => {
    const run = await simulate('none', 45);
    expect(run.firstRefusal).toBeUndefined();
    const quiet = ['SluiceAuditSpoolFullSoon', 'SluiceAuditShippingStalled', 'SluiceAuditSpoolNearFull', 'SluiceAuditWriteFailing', 'SluiceAuditEventsDropped'];
    const res = await promtool({
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [{ name: 'store none', interval: '1m', input_series: inputSeries(run), alert_rule_test: quiet.map((alertname) => ({ eval_time: '44m', alertname, exp_alerts: [] })) }],
    });
    expect(res.output).toContain('SUCCESS');
    expect(res.code).toBe(0);
  });
});
