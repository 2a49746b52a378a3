// `--cluster` for policy eval|test|explain: which bundle to evaluate with and whether a local build
// may stand in for what the cluster's sidecars run. Pure decisions over a ClusterPolicy (cluster-
// source.ts) plus the one place the cluster's organisation goes into a bundle's data, the way the
// sidecar's engine does it (data.organisation replaced, the rest of data.json kept).
// It must never let a local build of another revision pass for the cluster's policy silently: that
// is refused (exit 3) unless the user says --allow-stale, and then it is said on stderr.
import { clientBuild } from '../build-info.ts';
import { CliError } from '../errors.ts';
import type { PolicyBundle } from '../../../lib/src/policy/bundle.ts';
import type { ClusterPolicy } from './cluster-source.ts';
import { EXIT_REVISION_MISMATCH } from './explain.ts';

export interface ClusterPlan {
  /** the bundle to load */
  bundlePath: string;
  /** the cluster's own bundle (its policy ConfigMap) rather than a local build */
  clusterBundle: boolean;
  /** the bundle revision the sidecars run, and how that is known */
  expected?: { revision: string; from: string };
  /** sidecar versions (injected pods, else the webhook's), when no revision is known */
  versions: string[];
  notes: string[];
}

/** The bundle part of a revision a sidecar reports (`<bundle>+org.<organisation>`, lib/src/policy/engine.ts). */
export function bundleRevisionOf(revision: string): string {
  return revision.split('+org.')[0] ?? revision;
}

/** Where the cluster's own bundle is: `ConfigMap <ns>/<name>`, or the registry reference it was pulled from. */
export function bundleOrigin(bundle: NonNullable<ClusterPolicy['customBundle']>): string {
  return bundle.oci ? `registry ${bundle.oci.reference}` : `ConfigMap ${bundle.object}`;
}

export function planClusterEvaluation(cluster: ClusterPolicy, o: { bundle?: string | undefined; defaultBundle: string }): ClusterPlan {
  const notes: string[] = [];
  const counts = new Map<string, string[]>();
  for (const s of cluster.sidecars) if (s.revision) counts.set(bundleRevisionOf(s.revision), [...(counts.get(bundleRevisionOf(s.revision)) ?? []), s.pod]);
  const byUse = [...counts].sort((a, b) => b[1].length - a[1].length);
  let expected: ClusterPlan['expected'];
  if (byUse.length) {
    const [revision, pods] = byUse[0]!;
    expected = { revision, from: `running sidecar${pods.length > 1 ? 's' : ''} ${pods.join(', ')}` };
    if (byUse.length > 1) notes.push(`the sidecars of ${cluster.namespace} run ${byUse.length} revisions: ${byUse.map(([r, p]) => `${r} (${p.join(', ')})`).join('; ')}; compared with ${revision}`);
  } else if (cluster.customBundle?.revision) {
    expected = { revision: cluster.customBundle.revision, from: bundleOrigin(cluster.customBundle) };
  }
  const versions = cluster.sidecars.length ? [...new Set(cluster.sidecars.map((s) => s.version))] : cluster.webhookVersions;
  const bundlePath = o.bundle ?? cluster.customBundle?.path ?? o.defaultBundle;
  return { bundlePath, clusterBundle: o.bundle === undefined && cluster.customBundle !== undefined, ...(expected ? { expected } : {}), versions, notes: [...cluster.notes, ...notes] };
}

export interface StaleVerdict {
  ok: boolean;
  /** why a local build cannot stand in, and how to get the right one */
  message?: string;
  /** said on stderr even when ok */
  warnings: string[];
}

/** Whether `localRevision` (the bundle in plan.bundlePath) is what the cluster runs. */
export function staleCheck(plan: ClusterPlan, cluster: ClusterPolicy, localRevision: string, explicitBundle: boolean, clientVersion = clientBuild().version): StaleVerdict {
  const warnings: string[] = [];
  const how = cluster.customBundle
    ? `omit --bundle to evaluate with the cluster's own bundle (${bundleOrigin(cluster.customBundle)})`
    : cluster.bundleSource?.kind === 'oci'
      ? `pull ${cluster.bundleSource.reference} (oras pull) and pass --bundle with its bundle.tar.gz`
      : `the sidecar image carries the default library: use kubectl-sluice ${plan.versions.join('/') || 'of the installed version'} (its policy/bundle.tar.gz), or check out that release and \`make policy\`, then pass --bundle policies/build/bundle.tar.gz`;
  if (plan.expected) {
    if (bundleRevisionOf(localRevision) === plan.expected.revision) return { ok: true, warnings };
    if (plan.clusterBundle && cluster.customBundle) {
      // The cluster's own bundle is not what its sidecars run: they refused it, have not read it yet, or cannot.
      return {
        ok: false,
        warnings,
        message: `the sidecars in ${cluster.namespace} run policy revision ${plan.expected.revision} (from ${plan.expected.from}), ${bundleOrigin(cluster.customBundle)} holds ${localRevision || '(no revision)'}: they have not taken it (refused, not read yet, or not readable for them: \`kubectl sluice check\` and their policy_load events say which); --allow-stale evaluates the ${cluster.customBundle.oci ? 'registry' : 'ConfigMap'}'s bundle anyway`,
      };
    }
    return {
      ok: false,
      warnings,
      message: `stale local build: the sidecars in ${cluster.namespace} run policy revision ${plan.expected.revision} (from ${plan.expected.from}), ${plan.bundlePath} is ${localRevision || '(no revision)'}. To get ${plan.expected.revision}: ${how}; --allow-stale evaluates with this build anyway`,
    };
  }
  if (plan.clusterBundle) return { ok: true, warnings };
  if (!plan.versions.length) {
    warnings.push(`no sidecar in ${cluster.namespace} reports its policy revision and no sluice webhook was found: ${plan.bundlePath} (revision ${localRevision}) cannot be compared with what the cluster runs`);
    return { ok: !!explicitBundle, warnings, ...(explicitBundle ? {} : { message: `cannot confirm the cluster's policy revision (no running sidecar in ${cluster.namespace}, no webhook): --allow-stale evaluates with ${plan.bundlePath} anyway` }) };
  }
  if (explicitBundle) {
    warnings.push(`no running sidecar in ${cluster.namespace} reports its policy revision (sluice ${plan.versions.join(', ')}): ${plan.bundlePath} (revision ${localRevision}) is not compared`);
    return { ok: true, warnings };
  }
  if (plan.versions.every((v) => v === clientVersion)) {
    warnings.push(`no running sidecar reports its policy revision: the default library of this kubectl-sluice ${clientVersion} (revision ${localRevision}) is taken for the one the ${clientVersion} sidecar image carries`);
    return { ok: true, warnings };
  }
  return {
    ok: false,
    warnings,
    message: `stale local build: the sidecars in ${cluster.namespace} are sluice ${plan.versions.join(', ')}, this kubectl-sluice ships the library of ${clientVersion} (${plan.bundlePath}, revision ${localRevision}), and no running sidecar reports its revision. To get theirs: ${how}; --allow-stale evaluates with this build anyway`,
  };
}

/** Applies the verdict: throws exit 3 unless ok or allowed; warnings (and an allowed refusal) go to `warn`. */
export function enforceFresh(verdict: StaleVerdict, allowStale: boolean, warn: (s: string) => void): void {
  for (const w of verdict.warnings) warn(`warning: ${w}\n`);
  if (verdict.ok) return;
  if (!allowStale) throw new CliError(verdict.message!, EXIT_REVISION_MISMATCH);
  warn(`warning: --allow-stale: ${verdict.message}\n`);
}

/** The bundle's data with the cluster's organisation as data.organisation, as the sidecar's engine sets it (for OPA's trace). */
export function withClusterOrganisation(bundle: PolicyBundle, cluster: ClusterPolicy): PolicyBundle {
  if (!cluster.organisation) return bundle;
  const base = bundle.data && typeof bundle.data === 'object' ? (bundle.data as Record<string, unknown>) : {};
  return { ...bundle, data: { ...base, organisation: cluster.organisation.value } };
}

/** What `--cluster` adds to eval's and explain's machine-readable output. */
export function clusterSummary(cluster: ClusterPolicy, plan: ClusterPlan, localRevision: string): Record<string, unknown> {
  return {
    namespace: cluster.namespace,
    source: cluster.source,
    ...(cluster.organisation ? { organisation: { revision: cluster.organisation.revision, objects: cluster.organisation.objects } } : {}),
    bundle: { path: plan.bundlePath, revision: localRevision, from: plan.clusterBundle && cluster.customBundle ? bundleOrigin(cluster.customBundle) : 'local' },
    ...(plan.expected ? { running_revision: plan.expected } : {}),
    sidecars: cluster.sidecars,
    ...(plan.notes.length ? { notes: plan.notes } : {}),
  };
}
