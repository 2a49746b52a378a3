// What policy a cluster's sidecars run in one namespace, read with the CLI's identity: the
// organisation from the SluicePolicy objects (api/'s effectiveSluicePolicy, the merge the sidecars
// use), the sidecar settings, a custom bundle when the pods mount one (the policy ConfigMap), the
// policy revision each running sidecar reports on its metrics (through the API server's pod proxy,
// as `check` reads it) and the sidecar versions injected pods record. A cluster without the
// SluicePolicy CRD, or whose webhook says settingsSource configMap, falls back to what was there
// before it: the organisation is the bundle's own data and the settings are the namespace's
// sluice-sidecar ConfigMap. Where the custom bundle comes from follows the webhook's config (its
// sidecar.policyBundleObject / policyOci / policyConfigMap, i.e. the chart's policy.bundle): with
// `release` it is the one ConfigMap in the release namespace every sidecar reads (its archive copied,
// verified later by cluster-load.ts as the sidecar verifies it); with `oci` cluster-load.ts pulls it
// (cluster-oci.ts, the registry client the sidecars use) and verifies it the same way.
// Read-only: never writes to the cluster; a custom bundle is copied to a private temp directory.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { LABEL_INJECTED, SETTINGS_KEY, SIDECAR_CONTAINER, SLUICE_POLICY_PATH, effectiveSluicePolicy } from '../../../api/src/index.ts';
import type { EffectiveSluicePolicy, Organisation } from '../../../api/src/index.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import { TARBALL_KEY, readBundle } from '../../../lib/src/policy/bundle.ts';
import { metricRevision, policyBundleSourceOf, settingsSourceOf } from '../commands/check.ts';
import type { PolicyBundleSource, SettingsSource } from '../commands/check.ts';
import { WEBHOOK_SELECTOR, injectedVersion } from '../commands/version.ts';
import type { PodLike } from '../commands/version.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import { rawGet } from '../kube.ts';
import type { KubeClient } from '../kube.ts';

/** The chart's default names (values policy.configMapName, the sidecar settings ConfigMap). */
export const POLICY_CONFIGMAP = 'sluice-policy';
export const SETTINGS_CONFIGMAP = 'sluice-sidecar';
const MAX_PODS = 20;

export interface SidecarReport {
  pod: string;
  version: string;
  phase: string;
  /** the bundle revision its metrics report (running pods only) */
  revision?: string;
}

export interface ClusterPolicy {
  namespace: string;
  /** the organisation the sidecars put into data.organisation; absent: the bundle's own data */
  organisation?: { value: Organisation; revision: string; objects: string[] };
  /** where the organisation and settings come from */
  source: 'SluicePolicy' | 'ConfigMap';
  settings: Record<string, unknown>;
  /** a custom bundle the pods mount (or, policy.bundle release, the release namespace's one), copied locally */
  customBundle?: {
    configMap: string;
    /** `<namespace>/<name>` of that ConfigMap */
    object: string;
    path: string;
    revision?: string;
    /** read from the API server by every sidecar (policy.bundle release): it must be signed */
    release?: boolean;
    /** pulled from the registry as every sidecar pulls it (policy.bundle oci): it must be signed */
    oci?: { reference: string; manifestDigest: string };
  };
  /** where the webhook tells the sidecars to take their bundle from; undefined: no webhook config readable */
  bundleSource?: PolicyBundleSource;
  /** policy.bundle release without a usable archive: what the sidecars record (they keep their last good bundle, or deny everything) */
  releaseProblem?: { object: string; code: string; message: string };
  sidecars: SidecarReport[];
  webhookVersions: string[];
  notes: string[];
}

/** The reads the cluster view needs; KubeClient implements them, tests may give another API server. */
export interface ClusterReader {
  /** JSON at an API path; undefined on 404. Throws ApprovalApiError otherwise. */
  get<T>(path: string, query?: Record<string, string>): Promise<T | undefined>;
  /** Text through the API server (pod proxy); undefined when it does not answer 200. */
  proxyText(path: string): Promise<string | undefined>;
}

export function kubeReader(client: KubeClient): ClusterReader {
  return {
    async get<T>(path: string, query?: Record<string, string>): Promise<T | undefined> {
      try {
        return await client.rest.call<T>('GET', path, query ? { query } : {});
      } catch (err) {
        if (err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_NOT_FOUND') return undefined;
        throw err;
      }
    },
    async proxyText(path: string): Promise<string | undefined> {
      const res = await rawGet(client, path, 5000).catch(() => undefined);
      return res?.status === 200 ? res.body : undefined;
    },
  };
}

interface ConfigMapLike {
  metadata?: { name?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

interface Volume {
  configMap?: { name: string };
}

type Pod = PodLike & { spec?: PodLike['spec'] & { volumes?: Volume[]; containers?: { name: string; ports?: { name?: string; containerPort: number }[] }[]; initContainers?: { name: string; ports?: { name?: string; containerPort: number }[] }[] } };

function holdsBundle(cm: ConfigMapLike): boolean {
  return cm.binaryData?.[TARBALL_KEY] !== undefined || cm.data?.['.manifest'] !== undefined || cm.binaryData?.['policy.wasm'] !== undefined || cm.data?.['policy.wasm'] !== undefined;
}

/** Writes a policy ConfigMap's files as the kubelet would mount them; returns the directory. */
function copyBundle(cm: ConfigMapLike): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-bundle-'));
  for (const [key, value] of Object.entries(cm.data ?? {})) {
    const file = join(dir, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, value);
  }
  for (const [key, value] of Object.entries(cm.binaryData ?? {})) {
    const file = join(dir, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, Buffer.from(value, 'base64'));
  }
  return dir;
}

function manifestRevision(cm: ConfigMapLike): string | undefined {
  try {
    const r = (JSON.parse(cm.data?.['.manifest'] ?? '') as { revision?: unknown }).revision;
    return typeof r === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

function forbidden(err: unknown): boolean {
  return err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_FORBIDDEN';
}

function wrap(err: unknown, what: string): never {
  if (err instanceof ApprovalApiError) {
    const usage = err.code === 'SLUICE_APPROVAL_API_UNREACHABLE' || err.code === 'SLUICE_APPROVAL_API_TIMEOUT';
    throw new CliError(`cannot read ${what}: ${err.message}`, usage ? EXIT_USAGE : EXIT_FAILED);
  }
  throw err;
}

/**
 * Where the webhook tells sidecars to read their organisation and settings (its config.yaml,
 * sidecar.settingsSource): undefined when no webhook or its ConfigMap is readable with this identity.
 */
export async function webhookSettingsSource(reader: ClusterReader): Promise<SettingsSource | undefined> {
  const text = await webhookConfigYaml(reader);
  return text === undefined ? undefined : settingsSourceOf(text);
}

/** The webhook's config.yaml (its ConfigMap, named as its Deployment); undefined when not readable. */
export async function webhookConfigYaml(reader: ClusterReader): Promise<string | undefined> {
  const deployments = await reader.get<{ items?: PodLike[] }>('/apis/apps/v1/deployments', { labelSelector: WEBHOOK_SELECTOR }).catch(() => undefined);
  const d = deployments?.items?.[0];
  if (!d?.metadata.name || !d.metadata.namespace) return undefined;
  const cm = await reader.get<ConfigMapLike>(`/api/v1/namespaces/${encodeURIComponent(d.metadata.namespace)}/configmaps/${encodeURIComponent(d.metadata.name)}`).catch(() => undefined);
  return cm?.data?.['config.yaml'];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * policy.bundle release: the archive in the release namespace's ConfigMap, written to a private
 * temp file, or the problem its sidecars record with the same code (bundle.object_missing,
 * bundle.object_no_archive, bundle.source_unreachable when this identity may not read it).
 */
async function readReleaseBundle(reader: ClusterReader, src: { namespace: string; name: string; key: string }): Promise<{ path: string; revision?: string } | { code: string; message: string }> {
  const object = `${src.namespace}/${src.name}`;
  let cm: ConfigMapLike | undefined;
  try {
    cm = await reader.get<ConfigMapLike>(`/api/v1/namespaces/${encodeURIComponent(src.namespace)}/configmaps/${encodeURIComponent(src.name)}`);
  } catch (err) {
    if (forbidden(err)) return { code: 'bundle.source_unreachable', message: `you may not read ConfigMap ${object} (the sidecars read it with their ServiceAccount): ${(err as Error).message}` };
    return wrap(err, `ConfigMap ${object}`);
  }
  if (!cm) return { code: 'bundle.object_missing', message: `ConfigMap ${object} does not exist: sidecars that never had a bundle deny every request, running ones keep their last good bundle` };
  const b64 = cm.binaryData?.[src.key];
  if (b64 === undefined || !BASE64.test(b64)) {
    const why = cm.data?.[src.key] !== undefined ? `holds ${src.key} as text data; create it with --from-file so the archive is binaryData` : `has no binaryData key ${src.key}`;
    return { code: 'bundle.object_no_archive', message: `ConfigMap ${object} ${why}` };
  }
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-cluster-bundle-')), src.key);
  writeFileSync(path, Buffer.from(b64, 'base64'));
  // unverified here, for the revision only; cluster-load.ts verifies it before it is evaluated
  const revision = await readBundle(path).then((b) => b.revision || undefined, () => undefined);
  return { path, ...(revision ? { revision } : {}) };
}

/** Reads the policy the sidecars of `namespace` run. */
export async function readClusterPolicy(reader: ClusterReader, namespace: string): Promise<ClusterPolicy> {
  const notes: string[] = [];
  // Without `get namespaces` the labels are unknown: bindings that select by label cannot be matched (said).
  const ns = await reader.get<{ metadata?: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}`).catch((e: unknown) => {
    if (forbidden(e)) {
      notes.push(`you may not read namespace ${namespace}: SluicePolicy bindings that select namespaces by label are not applied here`);
      return { metadata: { labels: {} } };
    }
    return wrap(e, `namespace ${namespace}`);
  });
  if (!ns) throw new CliError(`namespace ${namespace} not found`, EXIT_USAGE);

  // The organisation and settings: SluicePolicy when the CRD is served, else the old ConfigMap.
  let effective: EffectiveSluicePolicy | undefined;
  let settings: Record<string, unknown> = {};
  // A webhook with settingsSource configMap gives its sidecars no SluicePolicy (no SLUICE_POLICY_SOURCE):
  // the bundle's own organisation and the ConfigMap's settings, even where the CRD is served.
  const configYaml = await webhookConfigYaml(reader);
  const wanted = configYaml === undefined ? undefined : settingsSourceOf(configYaml);
  const bundleSource = configYaml === undefined ? undefined : policyBundleSourceOf(configYaml);
  const settingsConfigMap = wanted?.configMap ?? SETTINGS_CONFIGMAP;
  const list = wanted?.source === 'configMap' ? undefined : await reader.get<{ items?: unknown[] }>(SLUICE_POLICY_PATH).catch((e: unknown) => wrap(e, 'the SluicePolicy objects'));
  if (list) {
    const result = effectiveSluicePolicy(list.items ?? [], { name: namespace, labels: ns.metadata?.labels ?? {} });
    if (!result.ok) {
      throw new CliError(`the SluicePolicy objects give namespace ${namespace} no valid policy, so its sidecars keep their last good one or deny everything: ${result.problems.map((p) => `${p.object || '(unnamed)'}: ${p.code}: ${p.message}`).join('; ')}`, EXIT_FAILED);
    }
    effective = result.policy;
    settings = effective.sidecar;
    for (const p of result.ignored) notes.push(`SluicePolicy ${p.object} is invalid (${p.code}) but does not apply to ${namespace}`);
  } else {
    if (wanted?.source === 'configMap') notes.push(`the webhook's settingsSource is configMap: the organisation is the bundle's own data, the settings the ${settingsConfigMap} ConfigMap's`);
    else notes.push(`no SluicePolicy API in this cluster: the organisation is the bundle's own data, the settings the ${settingsConfigMap} ConfigMap's`);
    const cm = await reader.get<ConfigMapLike>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(settingsConfigMap)}`).catch((e: unknown) => wrap(e, `ConfigMap ${namespace}/${settingsConfigMap}`));
    const text = cm?.data?.[SETTINGS_KEY];
    if (text) {
      try {
        const parsed = parseYaml(text) as unknown;
        if (parsed && typeof parsed === 'object') settings = parsed as Record<string, unknown>;
      } catch (err) {
        notes.push(`${settingsConfigMap}/${SETTINGS_KEY} is not YAML (${(err as Error).message}): its sidecars do not start`);
      }
    }
  }

  // The sidecars: versions, mounted bundles and the revisions running ones report.
  const pods =
    (
      await reader.get<{ items?: Pod[] }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { labelSelector: `${LABEL_INJECTED}=true` }).catch((e: unknown) => {
        if (!forbidden(e)) return wrap(e, `the injected pods of ${namespace}`);
        notes.push(`you may not list pods in ${namespace}: no sidecar's revision or version is known`);
        return undefined;
      })
    )?.items ?? [];
  const sidecars: SidecarReport[] = [];
  const mounted = new Set<string>();
  for (const pod of pods.slice(0, MAX_PODS)) {
    for (const v of pod.spec?.volumes ?? []) if (v.configMap?.name) mounted.add(v.configMap.name);
    const report: SidecarReport = { pod: pod.metadata.name ?? '', version: injectedVersion(pod), phase: pod.status?.phase ?? 'Unknown' };
    const container = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER) as { ports?: { name?: string; containerPort: number }[] } | undefined;
    const port = container?.ports?.find((p) => p.name === 'sluice-admin')?.containerPort;
    if (report.phase === 'Running' && port !== undefined) {
      const metrics = await reader.proxyText(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(report.pod)}:${port}/proxy/metrics`);
      const revision = metrics === undefined ? undefined : metricRevision(metrics);
      if (revision) report.revision = revision;
    }
    sidecars.push(report);
  }
  if (pods.length > MAX_PODS) notes.push(`${pods.length - MAX_PODS} more injected pods not read`);

  // A custom bundle: a ConfigMap the pods mount that holds one, else the chart's default name.
  let customBundle: ClusterPolicy['customBundle'];
  let releaseProblem: ClusterPolicy['releaseProblem'];
  if (bundleSource?.kind === 'release') {
    const object = `${bundleSource.namespace}/${bundleSource.name}`;
    const got = await readReleaseBundle(reader, bundleSource);
    if ('path' in got) customBundle = { configMap: bundleSource.name, object, path: got.path, ...(got.revision ? { revision: got.revision } : {}), release: true };
    else releaseProblem = { object, ...got };
  }
  for (const name of bundleSource?.kind === 'release' || bundleSource?.kind === 'oci' ? [] : [...mounted, POLICY_CONFIGMAP]) {
    const cm = await reader.get<ConfigMapLike>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`).catch((e: unknown) => wrap(e, `ConfigMap ${namespace}/${name}`));
    if (cm && holdsBundle(cm)) {
      const path = copyBundle(cm);
      // an archive (binaryData bundle.tar.gz) carries its .manifest inside
      const revision = manifestRevision(cm) ?? (await readBundle(path).then((b) => b.revision || undefined, () => undefined));
      customBundle = { configMap: name, object: `${namespace}/${name}`, path, ...(revision ? { revision } : {}) };
      break;
    }
  }

  let webhookVersions: string[] = [];
  if (!sidecars.length) {
    // No pod to ask: the version the webhook injects (its Deployment's version label), where readable.
    const deployments = await reader.get<{ items?: PodLike[] }>('/apis/apps/v1/deployments', { labelSelector: WEBHOOK_SELECTOR }).catch(() => undefined);
    webhookVersions = [...new Set((deployments?.items ?? []).map((d) => d.metadata.labels?.['app.kubernetes.io/version'] ?? 'unknown'))];
  }

  return {
    namespace,
    ...(effective ? { organisation: { value: effective.organisation, revision: effective.revision, objects: effective.sources.map((s) => s.name) } } : {}),
    source: effective ? 'SluicePolicy' : 'ConfigMap',
    settings,
    ...(customBundle ? { customBundle } : {}),
    ...(bundleSource ? { bundleSource } : {}),
    ...(releaseProblem ? { releaseProblem } : {}),
    sidecars,
    webhookVersions,
    notes,
  };
}
