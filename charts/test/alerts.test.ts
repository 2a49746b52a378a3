// sluice's alerts with the real promtool: the rules file the chart embeds and the PrometheusRule it
// renders pass `promtool check rules`; `promtool test rules` proves every alert fires on its
// failure and stays quiet on a healthy series; every alert has a runbook in docs/runbooks that
// says what it means, how to check and how to fix.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, jest, test } from '@jest/globals';
import { stringify as toYaml } from 'yaml';
import { ALERTS, RUNBOOK_BASE, promtoolTests } from '../src/alerts.ts';
import { CHART, REPO, find, template, templateError } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

// tools/install.sh's promtool (the same Prometheus release e2e/cluster and the PromQL tests run).
const PROMTOOL = process.env.SLUICE_PROMTOOL ?? join(REPO, '.tools', 'bin', 'promtool');
const RULES = join(CHART, 'alerts', 'sluice-alerts.yaml');
const RUNBOOKS = join(REPO, 'docs', 'runbooks');

function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: `${stdout}${stderr}` }));
  });
}

describe('promtool', () => {
  test('check rules: the generated rules file', async () => {
    const res = await promtool(['check', 'rules', RULES], REPO);
    expect(res.output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(res.code).toBe(0);
  });

  test('check rules: the PrometheusRule the chart renders', async () => {
    const rule = find(await template({ monitoring: { prometheusRule: { enabled: true } } }), 'PrometheusRule') as K8sObject & { spec: unknown };
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
    writeFileSync(join(dir, 'rendered.yaml'), toYaml(rule.spec));
    const res = await promtool(['check', 'rules', 'rendered.yaml'], dir);
    expect(res.output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  test('test rules: every alert fires on its failure and stays quiet otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
    writeFileSync(join(dir, 'rules.yaml'), readFileSync(RULES));
    const tests = promtoolTests('rules.yaml') as { tests: { name: string }[] };
    expect(tests.tests.map((t) => t.name)).toEqual(ALERTS.flatMap((a) => [`${a.alert} fires`, `${a.alert} stays quiet`]));
    writeFileSync(join(dir, 'tests.yaml'), toYaml(tests, { lineWidth: 0 }));
    const res = await promtool(['test', 'rules', 'tests.yaml'], dir);
    expect(res.output).toContain('SUCCESS');
    expect(res.code).toBe(0);
  });

  test('a broken alert fails promtool test rules (the tests can fail)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
    // The deny-spike threshold moved out of reach: its "fires" case must now fail.
    writeFileSync(join(dir, 'rules.yaml'), readFileSync(RULES, 'utf8').replace('> 0.5 and on', '> 5000 and on'));
    writeFileSync(join(dir, 'tests.yaml'), toYaml(promtoolTests('rules.yaml'), { lineWidth: 0 }));
    const res = await promtool(['test', 'rules', 'tests.yaml'], dir);
    expect(res.code).not.toBe(0);
    expect(res.output).toMatch(/SluiceDenySpike fires/);
  });
});

describe('alerts and runbooks', () => {
  test('names, severities and runbook URLs', () => {
    expect(new Set(ALERTS.map((a) => a.alert)).size).toBe(ALERTS.length);
    for (const a of ALERTS) {
      expect(a.alert).toMatch(/^Sluice[A-Z][A-Za-z]+$/);
      expect(['warning', 'critical']).toContain(a.severity);
      expect(a.expr.startsWith(a.signal) || a.expr.includes(a.signal)).toBe(true);
    }
    expect(readFileSync(RULES, 'utf8')).toContain(`runbook_url: ${RUNBOOK_BASE}/SluiceSidecarDown.md`);
  });

  test.each(ALERTS.map((a) => a.alert))('docs/runbooks/%s.md says what it means, how to check and how to fix', (alert) => {
    const path = join(RUNBOOKS, `${alert}.md`);
    expect(existsSync(path)).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith(`# ${alert}\n`)).toBe(true);
    for (const heading of ['## Meaning', '## Impact', '## Check', '## Fix']) expect(text).toContain(`\n${heading}\n`);
    const spec = ALERTS.find((a) => a.alert === alert)!;
    // The runbook names what the alert measures, so a reader can find it in Prometheus.
    const metric = /\b(sluice_[a-z0-9_]+|up)\b/.exec(spec.signal)![1]!.replace(/_bucket$/, '');
    expect(text).toContain(metric);
  });

  test('no runbook without an alert', () => {
    const files = new Set(ALERTS.map((a) => `${a.alert}.md`));
    const extra = readdirSync(RUNBOOKS).filter((f) => f.endsWith('.md') && f !== 'README.md' && !files.has(f));
    expect(extra).toEqual([]);
  });
});

describe('monitoring.prometheusRule.disabledAlerts', () => {
  test('a misspelt alert name fails the install, naming the field (values.schema.json enum)', async () => {
    const err = await templateError({ monitoring: { prometheusRule: { enabled: true, disabledAlerts: ['SluiceDenySpik'] } } });
    expect(err).toMatch(/disabledAlerts/);
    expect(err).toMatch(/SluiceDenySpike/);
  });

  test('a listed alert is left out of the PrometheusRule, the others stay', async () => {
    const rule = find(await template({ monitoring: { prometheusRule: { enabled: true, disabledAlerts: ['SluiceDenySpike', 'SluiceWebhookAllReplicasDown'] } } }), 'PrometheusRule') as K8sObject & {
      spec: { groups: { rules: { alert: string }[] }[] };
    };
    const names = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).not.toContain('SluiceDenySpike');
    expect(names).not.toContain('SluiceWebhookAllReplicasDown');
    expect(names.length).toBe(ALERTS.length - 2);
  });
});
