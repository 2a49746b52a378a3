// Links the chart hands a platform team — each alert's runbook_url and the docs line of NOTES.txt —
// open the documentation of the version that is installed (its release tag v<appVersion>), never
// a moving branch: an alert from an older install must not open a runbook written for newer
// metrics. A mirror or an internal copy is one value (docs.baseURL); runbookBaseURL still wins.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { ALERTS, RUNBOOK_BASE } from '../src/alerts.ts';
import { CHART, NAMESPACE, RELEASE, REPO, find, helm, parseObjects, template, templateError, valuesFile } from './support/helm.ts';
import type { K8sObject } from './support/helm.ts';

jest.setTimeout(60_000);

type Rule = K8sObject & { spec: { groups: { rules: { alert: string; annotations: Record<string, string> }[] }[] } };
const MONITORING = { monitoring: { prometheusRule: { enabled: true } } };
const chartYaml = () => parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };

async function runbookUrls(values: unknown, chart = CHART): Promise<string[]> {
  const res = await helm(['template', RELEASE, chart, '-n', NAMESPACE, '--kube-version', '1.37.2', '-f', valuesFile({ ...MONITORING, ...(values as object) })]);
  if (res.code !== 0) throw new Error(res.stderr);
  const rule = find(parseObjects(res.stdout), 'PrometheusRule') as Rule;
  return rule.spec.groups.flatMap((g) => g.rules.map((r) => r.annotations.runbook_url!));
}

async function notes(values: unknown, chart = CHART): Promise<string> {
  const res = await helm(['install', RELEASE, chart, '-n', NAMESPACE, '--dry-run=client', '-f', valuesFile(values)]);
  if (res.code !== 0) throw new Error(res.stderr);
  return res.stdout.slice(res.stdout.indexOf('\nNOTES:\n'));
}

/** A copy of the chart (symlinks resolved) released as another version. */
function chartAtVersion(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-chart-version-'));
  execFileSync('cp', ['-rL', CHART, dir]);
  const copy = join(dir, 'sluice');
  const text = readFileSync(join(copy, 'Chart.yaml'), 'utf8').replace(/^version: .*$/m, `version: ${version}`).replace(/^appVersion: .*$/m, `appVersion: "${version}"`);
  writeFileSync(join(copy, 'Chart.yaml'), text);
  return copy;
}

describe('links to the installed version', () => {
  test('the release tag the links name is the version tools/release.ts tags (package.json)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(chartYaml().appVersion).toBe(pkg.version);
    expect(RUNBOOK_BASE).toBe(`https://github.com/sluice-dev/sluice/blob/v${pkg.version}/docs/runbooks`);
  });

  test('every runbook_url of the PrometheusRule opens docs/runbooks/<Alert>.md at the release tag, and that file exists', async () => {
    const urls = await runbookUrls({});
    expect(urls).toHaveLength(ALERTS.length);
    const base = `https://github.com/sluice-dev/sluice/blob/v${chartYaml().appVersion}/docs/runbooks/`;
    for (const url of urls) {
      expect(url.startsWith(base)).toBe(true);
      expect(existsSync(join(REPO, 'docs', 'runbooks', url.slice(base.length)))).toBe(true);
    }
    expect(urls.join('\n')).not.toMatch(/\/(main|master|HEAD)\//);
    // The committed rules file (for Prometheus without the operator) names the same tag.
    expect(readFileSync(join(CHART, 'alerts', 'sluice-alerts.yaml'), 'utf8')).not.toMatch(/blob\/main\//);
  });

  test('a chart released as another version links that version', async () => {
    const copy = chartAtVersion('7.8.9');
    expect((await runbookUrls({}, copy))[0]).toMatch(/^https:\/\/github\.com\/sluice-dev\/sluice\/blob\/v7\.8\.9\/docs\/runbooks\/Sluice[A-Za-z]+\.md$/);
    expect(await notes(MONITORING, copy)).toContain('Docs:            https://github.com/sluice-dev/sluice/blob/v7.8.9/docs (install.md');
  });

  test('NOTES.txt names the docs and runbooks of the installed version, which exist', async () => {
    const v = chartYaml().appVersion;
    const text = await notes(MONITORING);
    expect(text).toContain(`runbooks at https://github.com/sluice-dev/sluice/blob/v${v}/docs/runbooks`);
    expect(text).toContain(`Docs:            https://github.com/sluice-dev/sluice/blob/v${v}/docs (install.md, upgrading.md, runbooks/ of this version)`);
    for (const f of ['install.md', 'upgrading.md', 'runbooks']) expect(existsSync(join(REPO, 'docs', f))).toBe(true);
  });

  test('docs.baseURL moves every link to a mirror; runbookBaseURL still wins for the alerts', async () => {
    const mirror = { docs: { baseURL: 'https://docs.internal.example/sluice/v0.1/' } };
    expect((await runbookUrls(mirror))[0]).toMatch(/^https:\/\/docs\.internal\.example\/sluice\/v0\.1\/runbooks\/Sluice[A-Za-z]+\.md$/);
    expect(await notes({ ...MONITORING, ...mirror })).toContain('Docs:            https://docs.internal.example/sluice/v0.1 (');
    const own = { ...mirror, monitoring: { prometheusRule: { enabled: true, runbookBaseURL: 'https://wiki.example.com/runbooks' } } };
    expect((await runbookUrls(own))[0]).toMatch(/^https:\/\/wiki\.example\.com\/runbooks\/Sluice[A-Za-z]+\.md$/);
  });

  test('docs.baseURL takes an http(s) URL and nothing else', async () => {
    await expect(template({ docs: { baseURL: 'javascript:alert(1)' } })).rejects.toThrow(/docs/);
    expect(await templateError({ docs: { baseURL: 'https://docs.example.com/sluice' } })).toBe('');
  });
});
