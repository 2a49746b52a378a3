// `kubectl sluice check [--pre] [-o json]`: is this cluster ready for sluice (--pre), and is the
// installed sluice healthy — as `linkerd check` does. Each check prints ✔ (ok), ✖ (failed: fix
// it, with a hint saying how) or ‼ (works, but look at it). Exit 0 when nothing failed, 1 when a
// check failed, 2 when the checks could not run (no kubeconfig, API server unreachable).
// Read-only: it lists, gets and asks SelfSubjectAccessReviews; it never changes the cluster.
import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { LABEL_INJECT, LABEL_INJECTED, SETTINGS_KEY, SIDECAR_CONTAINER, SLUICE_POLICY_PATH, effectiveSluicePolicy } from '../../../api/src/index.ts';
import type { PolicyNamespace } from '../../../api/src/index.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import { BundleError, readBundleBytes } from '../../../lib/src/policy/bundle.ts';
import { PolicyVerificationConfig, bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import { kubeClient, rawGet } from '../kube.ts';
import type { GlobalKubeFlags, KubeClient } from '../kube.ts';
import { formatData, parseOutput } from '../output.ts';
import type { Io } from '../program.ts';
import { injectedVersion, WEBHOOK_SELECTOR } from './version.ts';
import type { DeploymentLike, PodLike } from './version.ts';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  category: string;
  status: CheckStatus;
  message: string;
  hint?: string;
}

/** The chart's kubeVersion (charts/sluice/Chart.yaml, ">=1.30.0-0"); a test keeps them equal. */
export const MIN_KUBE_VERSION = '1.30.0';
/** The CRDs the chart installs. */
export const CRDS = ['approvalrequests.sluice.io'] as const;
const PART_OF = 'app.kubernetes.io/part-of=sluice';
const SKEW_WARN_MS = 5_000;
const CERT_WARN_MS = 30 * 86_400_000;
const PSA_ENFORCE = 'pod-security.kubernetes.io/enforce';
const MAX_PODS_LISTED = 20;

// --- pure parts --------------------------------------------------------------------------------

export function parseKubeVersion(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function versionAtLeast(v: string, min: string): boolean {
  const a = parseKubeVersion(v);
  const b = parseKubeVersion(min)!;
  if (!a) return false;
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return true;
}

/** Skew between the API server's Date header (1 s resolution) and the local clock at the midpoint. */
export function clockSkew(dateHeader: string | undefined, midpointMs: number): CheckResult {
  const at = dateHeader ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(at)) return { category: 'kubernetes-api', status: 'warn', message: 'clock skew unknown: the API server sent no Date header' };
  // The header is truncated to the second: up to 1 s of apparent skew is resolution, not skew.
  const skew = Math.max(0, Math.abs(midpointMs - at) - 1000);
  const s = (skew / 1000).toFixed(1);
  if (skew > SKEW_WARN_MS) {
    return { category: 'kubernetes-api', status: 'warn', message: `clock skew ${s} s between this machine and the API server`, hint: 'approval expiries and audit times are compared across machines: sync clocks with NTP' };
  }
  return { category: 'kubernetes-api', status: 'ok', message: `clock skew under ${Math.max(1, Math.ceil(skew / 1000))} s` };
}

/** Who installs the interception rules (webhook/src/cni-mode.ts): a root init container, or the node agent. */
export type InterceptionMode = 'init' | 'cni';

/** The mode in a webhook ConfigMap's config.yaml (absent: init, what webhooks before the setting did). */
export function interceptionModeOf(configYaml: string | undefined): InterceptionMode {
  const parsed = configYaml ? (parseYaml(configYaml) as { interception?: { mode?: string } } | null) : null;
  return parsed?.interception?.mode === 'cni' ? 'cni' : 'init';
}

/** Where the webhook tells sidecars to read their settings (webhook/src/config.ts sidecar.settingsSource). */
export interface SettingsSource {
  source: 'cluster' | 'configMap';
  /** the per-namespace settings ConfigMap (source configMap, or a cluster without the SluicePolicy API) */
  configMap: string;
}

/** The settings source in a webhook ConfigMap's config.yaml (absent: configMap, the webhook's default). */
export function settingsSourceOf(configYaml: string | undefined): SettingsSource {
  const parsed = configYaml ? (parseYaml(configYaml) as { sidecar?: { settingsSource?: string; sidecarConfigMap?: string } } | null) : null;
  const cm = parsed?.sidecar?.sidecarConfigMap;
  return { source: parsed?.sidecar?.settingsSource === 'cluster' ? 'cluster' : 'configMap', configMap: typeof cm === 'string' && cm ? cm : 'sluice-sidecar' };
}

/**
 * Where the webhook tells sidecars to take their custom policy bundle from (webhook/src/config.ts
 * sidecar.policyBundleObject / policyOci / policyConfigMap; the chart's policy.bundle release / oci /
 * configMap): one ConfigMap in the release namespace, a registry, a ConfigMap mounted per namespace,
 * or none (the library built into the sidecar image).
 */
export type PolicyBundleSource =
  | { kind: 'release'; namespace: string; name: string; key: 'bundle.tar.gz' }
  | { kind: 'oci'; reference: string }
  | { kind: 'configMap'; name: string }
  | { kind: 'builtin' };

/** The policy source in a webhook ConfigMap's config.yaml (absent: configMap sluice-policy, the webhook's default). */
export function policyBundleSourceOf(configYaml: string | undefined): PolicyBundleSource {
  const parsed = configYaml ? (parseYaml(configYaml) as { sidecar?: { policyBundleObject?: unknown; policyOci?: { reference?: unknown } | null; policyConfigMap?: unknown } } | null) : null;
  const s = parsed?.sidecar;
  const object = s?.policyBundleObject;
  if (typeof object === 'string' && /^[^/]+\/[^/]+$/.test(object)) {
    const [namespace, name] = object.split('/') as [string, string];
    return { kind: 'release', namespace, name, key: 'bundle.tar.gz' };
  }
  if (s?.policyOci && typeof s.policyOci.reference === 'string') return { kind: 'oci', reference: s.policyOci.reference };
  if (s?.policyConfigMap === null) return { kind: 'builtin' };
  return { kind: 'configMap', name: typeof s?.policyConfigMap === 'string' && s.policyConfigMap ? s.policyConfigMap : 'sluice-policy' };
}

/** One namespace's sidecar settings and where they came from; `problem` when its sidecars have none. */
export type NamespaceSettings = { settings: Record<string, unknown> | undefined; from: string } | { problem: string; from: string };

/** The settings the SluicePolicy objects give a namespace, merged as its sidecars merge them. */
export function settingsFromSluicePolicies(objects: readonly unknown[], ns: PolicyNamespace): NamespaceSettings {
  const result = effectiveSluicePolicy(objects, ns);
  if (!result.ok) return { from: 'SluicePolicy', problem: result.problems.map((p) => `${p.object || '(unnamed)'}: ${p.code}: ${p.message}`).join('; ') };
  return { settings: result.policy.sidecar, from: `SluicePolicy ${result.policy.sources.map((s) => s.name).join('+')}` };
}

/** The settings in a namespace's settings ConfigMap (sidecar.yaml); undefined settings when there is none. */
export function settingsFromConfigMap(namespace: string, name: string, data: Record<string, string> | undefined): NamespaceSettings {
  const from = `ConfigMap ${namespace}/${name}`;
  const text = data?.[SETTINGS_KEY];
  if (text === undefined) return { settings: undefined, from };
  try {
    const parsed = parseYaml(text) as unknown;
    return { settings: parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {}, from };
  } catch (err) {
    return { from, problem: `sidecar.yaml is not YAML (${(err as Error).message})` };
  }
}

/** The log store in sidecar settings: a store to probe, 'none', or undefined (not set). */
export function auditStoreOf(settings: Readonly<Record<string, unknown>> | undefined): { kind: string; url: string } | 'none' | undefined {
  const store = (settings?.audit as { store?: unknown } | undefined)?.store;
  if (store === 'none') return 'none';
  if (store && typeof store === 'object' && typeof (store as { url?: unknown }).url === 'string') {
    const s = store as { type?: unknown; url: string };
    return { kind: typeof s.type === 'string' ? s.type : 'loki', url: s.url };
  }
  return undefined;
}

/** Pod Security level of an agent namespace: in mode init the init container needs NET_ADMIN/NET_RAW and root. */
export function podSecurityCheck(ns: { metadata: { name?: string; labels?: Record<string, string> } }, mode: InterceptionMode = 'init'): CheckResult {
  const name = ns.metadata.name ?? '';
  const level = ns.metadata.labels?.[PSA_ENFORCE];
  const category = 'agent-namespaces';
  // Mode cni: every container sluice injects meets "restricted"; the agent's own containers must too.
  if (mode === 'cni') return { category, status: 'ok', message: `namespace ${name}: Pod Security "${level ?? 'unset (the cluster default)'}" (mode cni: sluice's containers pass restricted)` };
  if (level === 'baseline' || level === 'restricted') {
    return {
      category,
      status: 'fail',
      message: `namespace ${name}: Pod Security "${level}" refuses the sluice-init container (NET_ADMIN, NET_RAW, root) in the current interception mode`,
      hint: `kubectl label namespace ${name} ${PSA_ENFORCE}=privileged --overwrite (and keep the sluice guard on: it, not PSA, limits agent containers)`,
    };
  }
  if (level === undefined) return { category, status: 'ok', message: `namespace ${name}: no Pod Security label (the cluster default applies; it must not be baseline or restricted)` };
  return { category, status: 'ok', message: `namespace ${name}: Pod Security "${level}"` };
}

/**
 * The Secret holding the webhook's serving certificate: the Secret volume the Deployment mounts
 * (modes helm and cert-manager), else the Secret the webhook keeps itself (mode self, the chart's
 * default: an emptyDir is mounted and config.yaml's selfCert.secretName names the Secret).
 */
export function servingSecretOf(volumes: readonly { secret?: { secretName?: string } }[], configYaml: string | undefined): { name: string; self: boolean } | undefined {
  const mounted = volumes.map((v) => v.secret?.secretName).find((n): n is string => typeof n === 'string' && n !== '');
  if (mounted) return { name: mounted, self: false };
  const parsed = configYaml ? (parseYaml(configYaml) as { selfCert?: { secretName?: unknown } } | null) : null;
  const name = parsed?.selfCert?.secretName;
  return typeof name === 'string' && name ? { name, self: true } : undefined;
}

/** Every certificate of a PEM bundle (a caBundle holds two while a self-managed CA rotates). */
function pemCertificates(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [pem]).map((block) => new X509Certificate(block));
}

/**
 * The serving certificate against the CA bundle the registrations trust (signed by any CA in it)
 * and the Service name. `selfManaged`: the webhook issues it itself (certificates.mode self).
 */
export function servingCertCheck(leafPem: string, caPem: string, serviceHost: string, nowMs: number, selfManaged = false): CheckResult {
  const category = 'sluice-webhook';
  let leaf: X509Certificate;
  let cas: X509Certificate[];
  try {
    leaf = new X509Certificate(leafPem);
    cas = pemCertificates(caPem);
  } catch (err) {
    return { category, status: 'fail', message: `serving certificate or caBundle unreadable: ${(err as Error).message}` };
  }
  const hint = selfManaged
    ? 'the webhook re-issues it from its CA within certificates.resyncSeconds (mode self): read the webhook logs'
    : 'helm upgrade re-issues it; with cert-manager, check the Certificate';
  if (!cas.some((ca) => leaf.verify(ca.publicKey))) return { category, status: 'fail', message: 'serving certificate is not signed by the caBundle the registrations trust', hint };
  if (!leaf.checkHost(serviceHost)) return { category, status: 'fail', message: `serving certificate does not name ${serviceHost} (it names ${leaf.subjectAltName ?? leaf.subject})`, hint };
  const until = Date.parse(leaf.validTo);
  if (until <= nowMs || Date.parse(leaf.validFrom) > nowMs) return { category, status: 'fail', message: `serving certificate not valid now (valid ${leaf.validFrom} to ${leaf.validTo})`, hint };
  if (until - nowMs < CERT_WARN_MS) return { category, status: 'warn', message: `serving certificate expires ${leaf.validTo}`, hint };
  return { category, status: 'ok', message: `serving certificate for ${serviceHost} valid until ${new Date(until).toISOString().slice(0, 10)}, signed by the registered CA` };
}

export function metricRevision(metrics: string): string | undefined {
  return /^sluice_policy_bundle_info\{[^}]*revision="([^"]*)"[^}]*\}\s+1/m.exec(metrics)?.[1];
}

const SYMBOL: Record<CheckStatus, string> = { ok: '✔', fail: '✖', warn: '‼', skip: '-' };

export function checkText(results: readonly CheckResult[]): string {
  const out: string[] = [];
  let category = '';
  // One block per category, in the order categories first appear (checks of one category may run apart).
  const order = [...new Set(results.map((r) => r.category))];
  const grouped = order.flatMap((c) => results.filter((r) => r.category === c));
  for (const r of grouped) {
    if (r.category !== category) {
      if (category) out.push('');
      out.push(r.category, '-'.repeat(r.category.length));
      category = r.category;
    }
    out.push(`${SYMBOL[r.status]} ${r.message}`);
    if (r.hint && r.status !== 'ok') out.push(`    hint: ${r.hint}`);
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  out.push('', failed ? `Status check results are ✖ (${failed} failed${warned ? `, ${warned} to look at` : ''})` : `Status check results are ✔${warned ? ` (${warned} to look at)` : ''}`);
  return `${out.join('\n')}\n`;
}

// --- against the cluster -----------------------------------------------------------------------

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Obj<S = unknown, T = unknown> {
  metadata: Meta;
  spec?: S;
  status?: T;
  data?: Record<string, string>;
  webhooks?: { name: string; failurePolicy?: string; clientConfig: { caBundle?: string; service?: { name: string; namespace: string; port?: number }; url?: string } }[];
}
type List<T> = { items: T[] };

/** Stops the whole run: the checks cannot go on (exit 2). */
class CannotRun extends Error {}

function explain(err: unknown): string {
  if (err instanceof ApprovalApiError) return err.code === 'SLUICE_APPROVAL_API_FORBIDDEN' ? `forbidden: ${err.message}` : err.message;
  return err instanceof Error ? err.message : String(err);
}

class Checker {
  readonly results: CheckResult[] = [];
  /** from the webhook's config.yaml (read by interception()); the webhook's default until then */
  settingsSource: SettingsSource = settingsSourceOf(undefined);
  /** from the webhook's config.yaml (read by interception()); undefined: no webhook config read */
  policySource: PolicyBundleSource | undefined;
  /** policy.bundle release: the revision of the release namespace's bundle, once it verified */
  releaseBundle: { object: string; revision: string } | undefined;
  /** the agent namespaces' labels (read by agentNamespaces()): SluicePolicy bindings select by them */
  readonly namespaceLabels = new Map<string, Record<string, string>>();
  readonly #c: KubeClient;
  readonly #flags: CheckFlags;
  constructor(client: KubeClient, flags: CheckFlags) {
    this.#c = client;
    this.#flags = flags;
  }

  add(category: string, status: CheckStatus, message: string, hint?: string): void {
    this.results.push({ category, status, message, ...(hint ? { hint } : {}) });
  }

  async get<T>(path: string, query?: Record<string, string>): Promise<T> {
    return this.#c.rest.call<T>('GET', path, query ? { query } : {});
  }

  /** A get that answers undefined on 404. */
  async find<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Runs one group of checks; an unexpected failure (RBAC, say) becomes a failed check, not a crash. */
  async guard(category: string, what: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      if (err instanceof CannotRun) throw err;
      this.add(category, 'fail', `could not check ${what}: ${explain(err)}`, 'the checks read cluster-wide objects: run as a cluster admin (or someone who may get and list them)');
    }
  }

  async api(): Promise<void> {
    const cat = 'kubernetes-api';
    let res;
    try {
      res = await rawGet(this.#c, '/version');
    } catch (err) {
      throw new CannotRun(`cannot reach the API server at ${this.#c.rest.server}: ${(err as Error).message}`);
    }
    if (res.status === 401 || res.status === 403) throw new CannotRun(`the API server at ${this.#c.rest.server} refused the credentials (HTTP ${res.status}): check the kubeconfig's user`);
    if (res.status !== 200) throw new CannotRun(`the API server at ${this.#c.rest.server} answered HTTP ${res.status} to /version`);
    const v = JSON.parse(res.body) as { gitVersion: string };
    this.add(cat, 'ok', `can reach the API server at ${this.#c.rest.server}`);
    if (versionAtLeast(v.gitVersion, MIN_KUBE_VERSION)) this.add(cat, 'ok', `Kubernetes ${v.gitVersion} (the chart needs ${MIN_KUBE_VERSION} or later)`);
    else this.add(cat, 'fail', `Kubernetes ${v.gitVersion} is older than ${MIN_KUBE_VERSION}, which the chart needs`, 'upgrade the cluster: the chart uses ValidatingAdmissionPolicy (GA in 1.30) and native sidecars');
    const date = res.headers.date;
    this.results.push(clockSkew(Array.isArray(date) ? date[0] : date, res.midpointMs));
  }

  async preInstall(): Promise<void> {
    const cat = 'pre-install';
    await this.guard(cat, 'the admission APIs', async () => {
      const reg = await this.get<{ resources: { name: string }[] }>('/apis/admissionregistration.k8s.io/v1');
      const names = new Set(reg.resources.map((r) => r.name));
      for (const r of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings']) {
        if (names.has(r)) this.add(cat, 'ok', `admissionregistration.k8s.io/v1 serves ${r}`);
        else this.add(cat, 'fail', `admissionregistration.k8s.io/v1 does not serve ${r}`, 'the chart needs Kubernetes 1.30 or later with the admission APIs enabled');
      }
    });
    await this.guard(cat, 'the caller\'s rights', async () => {
      const wanted: [string, string, string][] = [
        ['apiextensions.k8s.io', 'customresourcedefinitions', 'create'],
        ['admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'create'],
        ['admissionregistration.k8s.io', 'validatingadmissionpolicies', 'create'],
        ['rbac.authorization.k8s.io', 'clusterroles', 'create'],
        ['', 'namespaces', 'create'],
      ];
      for (const [group, resource, verb] of wanted) {
        const review = await this.#c.rest.call<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { group, resource, verb } } },
        });
        if (review.status?.allowed) this.add(cat, 'ok', `can ${verb} ${resource}`);
        else this.add(cat, 'fail', `cannot ${verb} ${resource}`, 'installing the chart needs cluster-admin rights (CRDs, admission registrations, cluster roles)');
      }
    });
    await this.guard(cat, 'an existing install', async () => {
      const crd = await this.find<Obj>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRDS[0]}`);
      if (!crd) this.add(cat, 'ok', 'no sluice installed yet');
      else this.add(cat, 'warn', `sluice is already installed (CRD ${CRDS[0]}, chart ${crd.metadata.labels?.['helm.sh/chart'] ?? 'unknown'})`, 'upgrade with helm upgrade (docs/upgrading.md); check it with `kubectl sluice check`');
    });
  }

  async crds(): Promise<void> {
    const cat = 'sluice-crds';
    await this.guard(cat, 'the CRDs', async () => {
      for (const name of CRDS) {
        const crd = await this.find<Obj<unknown, { conditions?: { type: string; status: string }[] }>>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        if (!crd) this.add(cat, 'fail', `CRD ${name} is missing`, 'helm upgrade --install the chart (crds.install=true), or apply api/crds from the release');
        else if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) this.add(cat, 'fail', `CRD ${name} is not Established`, `kubectl get crd ${name} -o yaml: read its conditions`);
        else this.add(cat, 'ok', `CRD ${name} is established`);
      }
    });
  }

  /** Answers the webhook Deployments found (for later checks). */
  async webhook(): Promise<DeploymentLike[]> {
    const cat = 'sluice-webhook';
    let deployments: DeploymentLike[] = [];
    await this.guard(cat, 'the webhook Deployment', async () => {
      const ns = this.#flags.namespace;
      deployments = (await this.get<List<DeploymentLike>>(ns ? `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/deployments` : '/apis/apps/v1/deployments', { labelSelector: WEBHOOK_SELECTOR })).items;
      if (!deployments.length) {
        this.add(cat, 'fail', `no webhook Deployment (labelled ${WEBHOOK_SELECTOR})${ns ? ` in namespace ${ns}` : ''}`, 'install the chart: helm install sluice oci://…/sluice -n sluice-system --create-namespace (docs/install.md)');
        return;
      }
      for (const d of deployments) {
        const id = `${d.metadata.namespace}/${d.metadata.name}`;
        const ready = d.status?.readyReplicas ?? 0;
        const want = d.spec?.replicas ?? 1;
        if (ready >= 1) this.add(cat, ready < want ? 'warn' : 'ok', `Deployment ${id}: ${ready}/${want} replicas ready`);
        else this.add(cat, 'fail', `Deployment ${id}: 0/${want} replicas ready (the webhook fails closed: injected pods cannot be created)`, `kubectl -n ${d.metadata.namespace} describe deployment ${d.metadata.name}; kubectl -n ${d.metadata.namespace} get pods -l app.kubernetes.io/component=webhook`);
      }
    });
    return deployments;
  }

  async registrations(deployments: readonly DeploymentLike[]): Promise<void> {
    const cat = 'sluice-admission';
    const services = new Set<string>();
    const cas = new Map<string, string>();
    await this.guard(cat, 'the webhook registrations', async () => {
      for (const kind of ['mutating', 'validating'] as const) {
        const items = (await this.get<List<Obj>>(`/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations`, { labelSelector: PART_OF })).items;
        const Kind = kind === 'mutating' ? 'MutatingWebhookConfiguration' : 'ValidatingWebhookConfiguration';
        if (!items.length) {
          this.add(cat, 'fail', `no ${Kind} of sluice`, `the ${kind} registration is missing: helm upgrade the release to restore it`);
          continue;
        }
        for (const item of items) {
          const hooks = item.webhooks ?? [];
          const problems: string[] = [];
          for (const w of hooks) {
            if (!w.clientConfig.caBundle) problems.push(`${w.name} has no caBundle`);
            else cas.set(item.metadata.name ?? '', Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8'));
            if (w.clientConfig.service) services.add(`${w.clientConfig.service.namespace}/${w.clientConfig.service.name}`);
            // failurePolicy is the chart's choice per webhook (exec/connect outside agent namespaces
            // are Ignore on purpose), so it is not second-guessed here.
          }
          if (problems.length) this.add(cat, 'fail', `${Kind} ${item.metadata.name}: ${problems.join('; ')}`, 'helm upgrade the release; the webhook patches caBundle at start when it manages its own certificate');
          else this.add(cat, 'ok', `${Kind} ${item.metadata.name} (${hooks.length} webhook${hooks.length === 1 ? '' : 's'})`);
        }
      }
    });
    await this.guard(cat, 'the admission policies', async () => {
      const policies = (await this.get<List<Obj>>('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', { labelSelector: PART_OF })).items;
      const bindings = (await this.get<List<Obj<{ policyName?: string }>>>('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', { labelSelector: PART_OF })).items;
      if (!policies.length) this.add(cat, 'fail', 'no ValidatingAdmissionPolicy of sluice', 'helm upgrade the release to restore them');
      const bound = new Set(bindings.map((b) => b.spec?.policyName));
      for (const p of policies) {
        if (bound.has(p.metadata.name)) this.add(cat, 'ok', `ValidatingAdmissionPolicy ${p.metadata.name} is bound`);
        else this.add(cat, 'fail', `ValidatingAdmissionPolicy ${p.metadata.name} has no binding (it enforces nothing)`, 'helm upgrade the release to restore its ValidatingAdmissionPolicyBinding');
      }
    });
    const catW = 'sluice-webhook';
    await this.guard(catW, 'the webhook Service and certificate', async () => {
      const ca = [...cas.values()][0];
      for (const svc of services) {
        const [ns, name] = svc.split('/') as [string, string];
        const found = await this.find<Obj>(`/api/v1/namespaces/${encodeURIComponent(ns)}/services/${encodeURIComponent(name)}`);
        if (!found) {
          this.add(catW, 'fail', `Service ${svc} the registrations call is missing`, 'helm upgrade the release');
          continue;
        }
        this.add(catW, 'ok', `Service ${svc} exists`);
        const host = `${name}.${ns}.svc`;
        // The serving certificate is the Secret the Deployment mounts (whoever issued it).
        const d = deployments.find((x) => x.metadata.namespace === ns);
        // Mode self mounts an emptyDir: the webhook's config.yaml names the Secret it keeps.
        const volumes = (d?.spec?.template?.spec as { volumes?: { secret?: { secretName?: string } }[] } | undefined)?.volumes ?? [];
        const mounted = volumes.some((v) => v.secret?.secretName);
        const cm = d && !mounted ? await this.find<Obj>(`/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps/${encodeURIComponent(d.metadata.name ?? '')}`) : undefined;
        const serving = servingSecretOf(volumes, cm?.data?.['config.yaml']);
        const secretName = serving?.name;
        if (!ca) {
          this.add(catW, 'fail', 'no caBundle in the registrations: the API server cannot trust the webhook', 'is the webhook running? it writes caBundle at start when it manages its certificate');
        } else if (!secretName) {
          this.add(catW, 'warn', `serving certificate not checked: no Secret volume on the webhook Deployment in ${ns}, and its config names no selfCert Secret`);
        } else {
          try {
            const secret = await this.get<Obj>(`/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(secretName)}`);
            const crt = secret.data?.['tls.crt'];
            if (!crt) this.add(catW, 'fail', `Secret ${ns}/${secretName} has no tls.crt`, serving?.self ? 'the webhook re-issues it at its next re-check (mode self)' : 'helm upgrade re-issues it');
            else this.results.push(servingCertCheck(Buffer.from(crt, 'base64').toString('utf8'), ca, host, Date.now(), serving?.self));
          } catch (err) {
            if (err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_FORBIDDEN') this.add(catW, 'warn', `serving certificate not checked: may not read Secret ${ns}/${secretName}`);
            else if (err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_NOT_FOUND') {
              this.add(catW, 'fail', `Secret ${ns}/${secretName} (the serving certificate) is missing`, serving?.self ? 'the webhook creates it at start (mode self): is a webhook pod running? read its logs' : 'helm upgrade the release, or check cert-manager');
            }
            else throw err;
          }
        }
        // Through the API server's service proxy: the webhook answers on the Service (TLS included).
        if ((d?.status?.readyReplicas ?? 0) < 1) {
          this.add(catW, 'skip', `webhook not probed through the Service: no ready replica`);
          continue;
        }
        const probe = await rawGet(this.#c, `/api/v1/namespaces/${encodeURIComponent(ns)}/services/https:${encodeURIComponent(name)}:443/proxy/readyz`).catch((err: Error) => ({ status: 0, body: err.message }));
        if (probe.status === 200) this.add(catW, 'ok', `webhook answers /readyz through Service ${svc}`);
        else this.add(catW, 'fail', `webhook does not answer through Service ${svc} (HTTP ${probe.status}: ${probe.body.trim().slice(0, 160)})`, `kubectl -n ${ns} logs deploy/${d?.metadata.name ?? name}`);
      }
    });
  }

  /** The interception mode from the webhook's ConfigMap, and in mode cni the node agent DaemonSets. */
  async interception(deployments: readonly DeploymentLike[]): Promise<InterceptionMode> {
    const cat = 'interception';
    let mode: InterceptionMode = 'init';
    await this.guard(cat, 'the interception mode', async () => {
      const d = deployments[0];
      if (!d) return;
      const ns = encodeURIComponent(d.metadata.namespace ?? '');
      const cm = await this.find<Obj>(`/api/v1/namespaces/${ns}/configmaps/${encodeURIComponent(d.metadata.name ?? '')}`);
      mode = interceptionModeOf(cm?.data?.['config.yaml']);
      this.settingsSource = settingsSourceOf(cm?.data?.['config.yaml']);
      if (cm?.data?.['config.yaml'] !== undefined) this.policySource = policyBundleSourceOf(cm.data['config.yaml']);
      if (mode === 'init') {
        this.add(cat, 'ok', 'interception mode init: a root init container with NET_ADMIN/NET_RAW installs each pod\'s rules (agent namespaces must allow Pod Security privileged)');
        return;
      }
      this.add(cat, 'ok', 'interception mode cni: the sluice node agent installs each pod\'s rules; injected pods need no privileges');
      const sets = (await this.get<List<Obj<unknown, { desiredNumberScheduled?: number; numberReady?: number }>>>(`/apis/apps/v1/namespaces/${ns}/daemonsets`, { labelSelector: `${PART_OF},app.kubernetes.io/component=cni` })).items;
      if (!sets.length) this.add(cat, 'fail', `no sluice node agent DaemonSet in ${d.metadata.namespace}: new injected pods stay in Init (their check finds no rules)`, 'helm upgrade the release with interception.mode=cni (docs/cni.md)');
      for (const ds of sets) {
        const want = ds.status?.desiredNumberScheduled ?? 0;
        const ready = ds.status?.numberReady ?? 0;
        if (want > 0 && ready >= want) this.add(cat, 'ok', `DaemonSet ${d.metadata.namespace}/${ds.metadata.name}: ${ready}/${want} node agents ready`);
        else this.add(cat, 'fail', `DaemonSet ${d.metadata.namespace}/${ds.metadata.name}: ${ready}/${want} node agents ready (new pods on a node without a ready agent do not start)`, `kubectl -n ${d.metadata.namespace} get pods -l app.kubernetes.io/component=cni -o wide; docs/cni.md`);
      }
    });
    return mode;
  }

  async agentNamespaces(mode: InterceptionMode = 'init'): Promise<string[]> {
    const cat = 'agent-namespaces';
    let names: string[] = [];
    await this.guard(cat, 'the agent namespaces', async () => {
      const items = (await this.get<List<Obj>>('/api/v1/namespaces', { labelSelector: `${LABEL_INJECT}=true` })).items;
      names = items.map((n) => n.metadata.name ?? '');
      for (const n of items) this.namespaceLabels.set(n.metadata.name ?? '', n.metadata.labels ?? {});
      if (!items.length) {
        this.add(cat, this.#flags.pre ? 'ok' : 'warn', `no namespace is labelled ${LABEL_INJECT}=true yet`, `kubectl label namespace NAME ${LABEL_INJECT}=true`);
        return;
      }
      for (const ns of items) this.results.push(podSecurityCheck(ns, mode));
    });
    return names;
  }

  /** One agent namespace's sidecar settings, from where the webhook says they come from. */
  async namespaceSettings(ns: string, policies: unknown[] | undefined): Promise<NamespaceSettings> {
    return policies
      ? settingsFromSluicePolicies(policies, { name: ns, labels: this.namespaceLabels.get(ns) ?? {} })
      : settingsFromConfigMap(ns, this.settingsSource.configMap, (await this.find<Obj>(`/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps/${encodeURIComponent(this.settingsSource.configMap)}`))?.data);
  }

  /**
   * Where the sidecars' custom policy comes from (the webhook's policy source). policy.bundle
   * release: the release namespace's ConfigMap exists, holds binaryData bundle.tar.gz and verifies
   * with the key each agent namespace's sidecars are configured with (the sidecar's own check:
   * readBundleBytes with that key); oci: the reference, not pulled from here.
   */
  async policyBundle(namespaces: readonly string[]): Promise<void> {
    const cat = 'policy-bundle';
    const src = this.policySource;
    if (!src) return;
    await this.guard(cat, 'the policy bundle', async () => {
      if (src.kind === 'builtin') {
        this.add(cat, 'ok', 'policy: the default library built into the sidecar image');
        return;
      }
      if (src.kind === 'configMap') {
        this.add(cat, 'ok', `policy: each agent namespace's ${src.name} ConfigMap, mounted into its pods (policy.bundle configMap; the library built into the image where there is none)`);
        return;
      }
      if (src.kind === 'oci') {
        this.add(cat, 'ok', `policy: pulled by every sidecar from ${src.reference} (policy.bundle oci); not pulled from here, run \`kubectl sluice policy eval --cluster --bundle\` with a pulled copy to check it`);
        return;
      }
      const object = `${src.namespace}/${src.name}`;
      const create = `opa build -b -t wasm -e sluice/decision --signing-key KEY.pem --signing-alg ALG -o ${src.key} . && kubectl -n ${src.namespace} create configmap ${src.name} --from-file=${src.key} --dry-run=client -o yaml | kubectl apply --server-side -f -`;
      const cm = await this.find<Obj & { binaryData?: Record<string, string> }>(`/api/v1/namespaces/${encodeURIComponent(src.namespace)}/configmaps/${encodeURIComponent(src.name)}`);
      if (!cm) {
        this.add(cat, 'fail', `policy: ConfigMap ${object} (policy.bundle release) does not exist: sidecars that never had a bundle are not ready and deny every request (bundle.object_missing)`, create);
        return;
      }
      const b64 = cm.binaryData?.[src.key];
      if (b64 === undefined) {
        const text = cm.data?.[src.key] !== undefined;
        this.add(cat, 'fail', `policy: ConfigMap ${object} ${text ? `holds ${src.key} as text data` : `has no binaryData key ${src.key}`}: the sidecars refuse it (bundle.object_no_archive)`, `create it with --from-file so the archive is binaryData: ${create}`);
        return;
      }
      const bytes = Buffer.from(b64, 'base64');
      this.add(cat, 'ok', `policy: ConfigMap ${object} (policy.bundle release) holds binaryData ${src.key} (${(bytes.length / 1024).toFixed(1)} KiB)`);
      if (!namespaces.length) {
        this.add(cat, 'skip', `policy: signature of ${object} not checked: no agent namespace whose sidecars' key to check it with`);
        return;
      }
      // The key is a sidecar setting: per agent namespace (usually one key for all, checked once).
      const policies = this.settingsSource.source === 'cluster' ? ((await this.find<{ items?: unknown[] }>(SLUICE_POLICY_PATH))?.items ?? undefined) : undefined;
      const byKey = new Map<string, string[]>();
      for (const ns of namespaces) {
        const found = await this.namespaceSettings(ns, policies);
        if ('problem' in found) continue; // said by the log-store check
        const raw = (found.settings?.policy as { verification?: unknown } | undefined)?.verification;
        const k = raw === undefined ? '' : JSON.stringify(raw);
        byKey.set(k, [...(byKey.get(k) ?? []), ns]);
      }
      for (const [k, nss] of byKey) {
        const where = `namespace${nss.length > 1 ? 's' : ''} ${nss.join(', ')}`;
        if (k === '') {
          this.add(cat, 'fail', `policy: the sidecars of ${where} have no policy.verification key: with policy.bundle release they do not start`, 'set sidecar.config.policy.verification (algorithm and publicKey) in the chart values');
          continue;
        }
        const parsed = PolicyVerificationConfig.safeParse(JSON.parse(k));
        if (!parsed.success) {
          this.add(cat, 'fail', `policy: the policy.verification setting of ${where} is invalid (${parsed.error.issues[0]?.message}): their sidecars refuse every bundle`, 'fix sidecar.config.policy.verification in the chart values');
          continue;
        }
        if (parsed.data.publicKey === undefined) {
          this.add(cat, 'warn', `policy: signature of ${object} not checked for ${where}: their key is the file ${parsed.data.publicKeyFile}, not readable from here`, 'put the public key inline (sidecar.config.policy.verification.publicKey) to have it checked here');
          continue;
        }
        try {
          const bundle = await readBundleBytes(bytes, `configmap ${object}`, { verification: bundleVerification(parsed.data)! });
          this.add(cat, 'ok', `policy: ${object} verifies with the key of ${where} (${parsed.data.algorithm}${bundle.signature?.keyId ? `, key id ${bundle.signature.keyId}` : ''}), revision ${bundle.revision || '(none)'}`);
          if (bundle.revision) this.releaseBundle = { object, revision: bundle.revision };
        } catch (err) {
          if (!(err instanceof BundleError)) throw err;
          this.add(cat, 'fail', `policy: the sidecars of ${where} refuse ${object}: ${err.message} (${err.code}); they keep their last good bundle, or deny every request`, `sign it with the private key of sidecar.config.policy.verification: ${create}`);
        }
      }
    });
  }

  async logStore(namespaces: readonly string[]): Promise<void> {
    const cat = 'log-store';
    await this.guard(cat, 'the log store', async () => {
      const stores: { kind: string; url: string; from: string }[] = [];
      if (this.#flags.loki) stores.push({ kind: 'loki', url: this.#flags.loki, from: '--loki' });
      if (this.#flags.victorialogs) stores.push({ kind: 'victorialogs', url: this.#flags.victorialogs, from: '--victorialogs' });
      if (!stores.length && namespaces.length) {
        // The settings the sidecars run with: the SluicePolicy objects (settingsSource cluster, the
        // chart's choice) or the per-namespace ConfigMap (configMap, or no SluicePolicy API served).
        let policies: unknown[] | undefined;
        const wanted = this.settingsSource;
        if (wanted.source === 'cluster') {
          policies = (await this.find<{ items?: unknown[] }>(SLUICE_POLICY_PATH))?.items ?? undefined;
          if (policies) this.add(cat, 'ok', 'sidecar settings from the SluicePolicy objects (webhook settingsSource cluster)');
          else this.add(cat, 'warn', `the webhook reads settings from SluicePolicy objects but this cluster serves no SluicePolicy API: reading the ${wanted.configMap} ConfigMaps instead`, 'install the chart\'s CRDs (sluicepolicies.sluice.io); sidecars of this webhook wait for a SluicePolicy');
        } else {
          this.add(cat, 'ok', `sidecar settings from each namespace's ${wanted.configMap} ConfigMap (webhook settingsSource configMap)`);
        }
        for (const ns of namespaces) {
          const found = policies
            ? settingsFromSluicePolicies(policies, { name: ns, labels: this.namespaceLabels.get(ns) ?? {} })
            : settingsFromConfigMap(ns, wanted.configMap, (await this.find<Obj>(`/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps/${encodeURIComponent(wanted.configMap)}`))?.data);
          if ('problem' in found) {
            this.add(cat, 'fail', `namespace ${ns}: no valid sidecar settings (${found.from}: ${found.problem}), so its sidecars do not start or keep their last good ones`, 'fix the object named; kubectl sluice policy eval --cluster -n NAMESPACE shows the merge');
            continue;
          }
          const store = auditStoreOf(found.settings);
          if (store === 'none') this.add(cat, 'warn', `namespace ${ns}: audit.store is none in ${found.from} (events stay in a bounded local ring, nothing is shipped)`, 'set sidecar.config.audit.store to {type: loki|victorialogs, url} in the chart values');
          else if (store && !stores.some((x) => x.url === store.url)) stores.push({ ...store, from: `${found.from}, namespace ${ns}` });
        }
      }
      if (!stores.length) {
        this.add(cat, 'skip', 'no log store to probe (give --loki URL or --victorialogs URL)');
        return;
      }
      for (const s of stores) {
        const path = s.kind === 'victorialogs' ? '/health' : '/ready';
        const url = new URL(path, s.url.endsWith('/') ? s.url : `${s.url}/`);
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
          if (res.ok) this.add(cat, 'ok', `${s.kind} at ${s.url} is ready (from ${s.from})`);
          else this.add(cat, 'fail', `${s.kind} at ${s.url} answered HTTP ${res.status} to ${path} (from ${s.from})`, 'sidecars spool audit events until the store answers; fix the store');
        } catch (err) {
          const inCluster = /\.svc(\.cluster\.local)?$/.test(new URL(s.url).hostname);
          const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
          if (inCluster) this.add(cat, 'warn', `${s.kind} at ${s.url} not reachable from here (${cause}): an in-cluster address`, `port-forward it and pass --${s.kind} http://127.0.0.1:PORT`);
          else this.add(cat, 'fail', `${s.kind} at ${s.url} not reachable (${cause}, from ${s.from})`, 'sidecars spool audit events until the store answers; fix the URL or the store');
        }
      }
    });
  }

  async injectedPods(webhookVersion: string | undefined): Promise<void> {
    const cat = 'injected-pods';
    await this.guard(cat, 'the injected pods', async () => {
      const ns = this.#flags.namespace;
      const pods = (await this.get<List<PodLike & { spec?: { volumes?: { configMap?: { name: string } }[] } }>>(ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : '/api/v1/pods', { labelSelector: `${LABEL_INJECTED}=true` })).items;
      if (!pods.length) {
        this.add(cat, 'ok', 'no injected pods');
        return;
      }
      const revisions = new Map<string, string | undefined>();
      for (const pod of pods.slice(0, MAX_PODS_LISTED)) {
        const id = `${pod.metadata.namespace}/${pod.metadata.name}`;
        const version = injectedVersion(pod);
        // The revision the pod should run: the policy ConfigMap it mounts (the one with a .manifest).
        let expected: string | undefined;
        for (const cmName of (pod.spec?.volumes ?? []).map((v) => v.configMap?.name).filter((n): n is string => n !== undefined)) {
          const key = `${pod.metadata.namespace}/${cmName}`;
          if (!revisions.has(key)) {
            const cm = await this.find<Obj>(`/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace ?? '')}/configmaps/${encodeURIComponent(cmName)}`);
            let rev: string | undefined;
            try {
              rev = cm?.data?.['.manifest'] ? (JSON.parse(cm.data['.manifest']) as { revision?: string }).revision : undefined;
            } catch {
              rev = undefined;
            }
            revisions.set(key, rev);
          }
          expected ??= revisions.get(key);
        }
        // policy.bundle release: nothing is mounted; the pod should run the release namespace's bundle
        const release = expected === undefined ? this.releaseBundle : undefined;
        if (release) expected = release.revision;
        let running: string | undefined;
        const sidecar = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER) as { ports?: { name?: string; containerPort: number }[] } | undefined;
        const port = sidecar?.ports?.find((p) => p.name === 'sluice-admin')?.containerPort;
        if (pod.status?.phase === 'Running' && port !== undefined) {
          const res = await rawGet(this.#c, `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace ?? '')}/pods/${encodeURIComponent(pod.metadata.name ?? '')}:${port}/proxy/metrics`).catch(() => undefined);
          running = res?.status === 200 ? metricRevision(res.body) : undefined;
        }
        const facts = `sidecar ${version}, policy ${running ?? (expected ? `${expected} (from the ConfigMap${release ? ` ${release.object}` : ''}; pod ${pod.status?.phase ?? 'unknown'})` : 'unknown')}`;
        const problems: string[] = [];
        if (webhookVersion && version !== webhookVersion) problems.push(`injected by ${version}, the webhook is ${webhookVersion}: restart the pod to get the current sidecar`);
        if (release && running && running.split('+org.')[0] !== expected) problems.push(`runs policy ${running}, ConfigMap ${release.object} holds ${expected}: the sidecar has not taken it (it refused it, has not read it yet, or may not read it): read its policy_load events and logs`);
        else if (!release && running && expected && running !== expected) problems.push(`runs policy ${running}, the ConfigMap holds ${expected}: the sidecar reloads it when the kubelet refreshes the mounted ConfigMap (usually a minute or two); if it stays behind, read the sidecar's logs`);
        if (problems.length) this.add(cat, 'warn', `${id}: ${facts}`, problems.join('; '));
        else this.add(cat, 'ok', `${id}: ${facts}`);
      }
      if (pods.length > MAX_PODS_LISTED) this.add(cat, 'skip', `${pods.length - MAX_PODS_LISTED} more injected pods not listed (narrow with -n)`);
    });
  }
}

export interface CheckFlags extends GlobalKubeFlags {
  pre?: boolean;
  output?: string;
  loki?: string;
  victorialogs?: string;
}

export async function runChecks(client: KubeClient, flags: CheckFlags): Promise<CheckResult[]> {
  const c = new Checker(client, flags);
  await c.api();
  if (flags.pre) {
    await c.preInstall();
    await c.agentNamespaces();
    return c.results;
  }
  await c.crds();
  const deployments = await c.webhook();
  await c.registrations(deployments);
  const mode = await c.interception(deployments);
  const namespaces = await c.agentNamespaces(mode);
  await c.policyBundle(namespaces);
  await c.logStore(namespaces);
  await c.injectedPods(deployments[0]?.metadata.labels?.['app.kubernetes.io/version']);
  return c.results;
}

async function checkCommand(flags: CheckFlags, io: Io): Promise<void> {
  const output = parseOutput(flags.output, ['text', 'json', 'yaml']);
  const client = await kubeClient(flags);
  let results: CheckResult[];
  try {
    results = await runChecks(client, flags);
  } catch (err) {
    if (err instanceof CannotRun) throw new CliError(`${err.message} (set KUBECONFIG or pass --kubeconfig/--context to point at the cluster)`, EXIT_USAGE);
    throw err;
  }
  const ok = !results.some((r) => r.status === 'fail');
  io.out(output === 'text' ? checkText(results) : formatData({ mode: flags.pre ? 'pre' : 'post', ok, results }, output));
  if (!ok) throw new CliError(`${results.filter((r) => r.status === 'fail').length} check(s) failed`, EXIT_FAILED);
}

export function registerCheckCommand(program: Command, io: Io): void {
  program
    .command('check')
    .description('check that the cluster is ready for sluice (--pre) or that the installed sluice is healthy')
    .option('--pre', 'before installing: API server version, admission APIs, install rights, agent namespaces')
    .option('--loki <url>', 'also probe this Loki (default: the sidecar settings of each agent namespace)')
    .option('--victorialogs <url>', 'also probe this VictoriaLogs (default: the sidecar settings)')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .action((flags: CheckFlags) => checkCommand(flags, io));
}
