// Runs the real Helm binary from .tools/bin over charts/sluice for tests: template with a set of
// values (returned as parsed objects), lint, and the error text when Helm refuses. Asynchronous,
// so a test file renders its matrix in parallel. Helm prints a warning for each symlink under
// files/ (webhook/manifests, api/crds, policies/build/bundle are linked, not copied); those lines
// are dropped from what tests see.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO = join(import.meta.dirname, '..', '..', '..');
export const CHART = join(REPO, 'charts', 'sluice');
export const HELM = join(REPO, '.tools', 'bin', 'helm');
/** The kube-apiserver e2e/support/kube runs (TOOLCHAIN.md). */
export const KUBE_VERSION = '1.37.2';
export const RELEASE = 'sluice';
export const NAMESPACE = 'sluice-system';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

const scratch = mkdtempSync(join(tmpdir(), 'sluice-chart-test-'));
let counter = 0;

export function valuesFile(values: unknown): string {
  const path = join(scratch, `values-${++counter}.json`);
  writeFileSync(path, JSON.stringify(values));
  return path;
}

export function helm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`cannot run ${HELM}: ${err.message}`, { cause: err }));
        return;
      }
      const kept = stderr
        .split('\n')
        .filter((l) => !/found symbolic link in path/.test(l))
        .join('\n')
        .trim();
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr: kept });
    });
  });
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  extraArgs?: string[];
}

/** `helm template` → its raw output; rejects with Helm's message when it refuses. */
export async function templateText(values: unknown = {}, o: TemplateOptions = {}): Promise<string> {
  const res = await helm(['template', o.release ?? RELEASE, CHART, '-n', o.namespace ?? NAMESPACE, '--kube-version', KUBE_VERSION, '-f', valuesFile(values), ...(o.extraArgs ?? [])]);
  if (res.code !== 0) throw new Error(res.stderr);
  return res.stdout;
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

export async function template(values: unknown = {}, o: TemplateOptions = {}): Promise<K8sObject[]> {
  return parseObjects(await templateText(values, o));
}

/** Helm's error text for values it must refuse ('' when it accepted them). */
export async function templateError(values: unknown, o: TemplateOptions = {}): Promise<string> {
  try {
    await templateText(values, o);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

export function lint(values: unknown = {}): Promise<HelmResult> {
  return helm(['lint', '--strict', CHART, '--kube-version', KUBE_VERSION, '-f', valuesFile(values)]);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

export function findAll(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The values matrix the golden snapshots and lint run over. */
export const MATRIX: Record<string, unknown> = {
  defaults: {},
  'agents-ha-off': { agents: { namespaces: ['agents'] }, webhook: { replicas: 1, antiAffinity: 'none' } },
  'cert-manager': { agents: { namespaces: ['agents', 'team-b'] }, certificates: { mode: 'cert-manager' } },
  self: { agents: { namespaces: ['agents'] }, certificates: { mode: 'self' } },
  // The chart's own CA (mode helm, the default before self): for installs that set it explicitly.
  'helm-certs': { agents: { namespaces: ['agents'] }, certificates: { mode: 'helm' } },
  cni: { agents: { namespaces: ['agents'] }, interception: { mode: 'cni' } },
  'monitoring-on': {
    agents: { namespaces: ['agents'] },
    approvals: { namespaces: { agents: { approverGroups: ['platform-security'] } } },
    monitoring: {
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      podMonitor: { enabled: true },
      prometheusRule: { enabled: true, disabledAlerts: ['SluiceDenySpike'] },
      dashboards: { enabled: true },
    },
  },
  // A custom signed bundle in one ConfigMap of the release namespace, read by every sidecar (charts/test/policy-bundle.test.ts).
  'policy-release': {
    agents: { namespaces: ['agents'] },
    policy: { bundle: 'release', writerServiceAccountNamespaces: ['argocd'] },
    sidecar: { config: { policy: { verification: { algorithm: 'ES256', publicKey: '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n' } } } },
  },
};
