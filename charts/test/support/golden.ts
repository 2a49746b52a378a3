// Golden snapshots of `helm template` output: what changes on every render (generated keys and
// certificates, timestamps) and what other tests already pin byte for byte (the policy bundle, the
// dashboards' JSON, the CRD schema) is replaced by a placeholder, so a snapshot diff shows a change of the chart's
// shape. `SLUICE_UPDATE_GOLDEN=1` rewrites the files.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { K8sObject } from './helm.ts';

export const GOLDEN_DIR = join(import.meta.dirname, '..', 'golden');
export const UPDATE = process.env.SLUICE_UPDATE_GOLDEN === '1';

function placeholder(what: string): string {
  return `<${what}>`;
}

function normalizeObject(o: K8sObject): K8sObject {
  const copy = structuredClone(o) as K8sObject & { data?: Record<string, string>; binaryData?: Record<string, string>; webhooks?: { clientConfig?: { caBundle?: string } }[] };
  if (copy.kind === 'Secret' && copy.data) for (const k of Object.keys(copy.data)) copy.data[k] = placeholder(`generated ${k}`);
  const ann = copy.metadata.annotations;
  if (ann?.['sluice.io/not-after']) ann['sluice.io/not-after'] = placeholder('unix time');
  for (const w of copy.webhooks ?? []) if (w.clientConfig?.caBundle) w.clientConfig.caBundle = placeholder('generated CA');
  if (copy.kind === 'ConfigMap' && copy.metadata.labels?.['app.kubernetes.io/component'] === 'policy') {
    for (const k of Object.keys(copy.data ?? {})) copy.data![k] = placeholder(`policies/build/bundle/${k}`);
    for (const k of Object.keys(copy.binaryData ?? {})) copy.binaryData![k] = placeholder(`policies/build/bundle/${k}`);
  }
  if (copy.kind === 'ConfigMap' && copy.metadata.labels?.['app.kubernetes.io/component'] === 'dashboards') {
    for (const k of Object.keys(copy.data ?? {})) copy.data![k] = placeholder(`charts/sluice/dashboards/${k.replace(/^sluice-/, '')}`);
  }
  // The CRD's schema is api/crds' (chart.test.ts pins it): its own changes are not the chart's.
  if (copy.kind === 'CustomResourceDefinition') copy.spec = placeholder(`api/crds/${copy.metadata.name}.yaml spec`);
  return copy;
}

export function snapshot(objects: K8sObject[]): string {
  const sorted = [...objects].sort((a, b) => `${a.kind}/${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.namespace ?? ''}/${b.metadata.name}`));
  return sorted.map((o) => `---\n${toYaml(normalizeObject(o), { lineWidth: 0, sortMapEntries: true })}`).join('');
}

export function goldenPath(name: string): string {
  return join(GOLDEN_DIR, `${name}.yaml`);
}

/** Compares with (or, when updating, writes) the golden file; returns the golden text. */
export function golden(name: string, actual: string): string {
  const path = goldenPath(name);
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) throw new Error(`${path} is missing: run with SLUICE_UPDATE_GOLDEN=1 to create it`);
    writeFileSync(path, actual);
  }
  return readFileSync(path, 'utf8');
}

export function goldenFiles(): string[] {
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length));
}
