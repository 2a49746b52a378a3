// The I/O of `--cluster`: reads the cluster's policy for a namespace (cluster-source.ts), picks and
// loads the bundle (the cluster's own policy ConfigMap, verified with the sidecars' inline key when
// they verify, or a local build checked for staleness), and puts the cluster's organisation into its
// data. Read-only towards the cluster.
// policy.bundle release: the release namespace's ConfigMap is verified as the sidecar verifies it
// (readBundleBytes' signature check with the key of the sidecars' settings): without a key, unsigned,
// signed by another key or tampered it is refused (exit 1) with the sidecar's code, never evaluated.
// policy.bundle oci: the registry client is the sidecar's (sidecar/src/policy/bundle-oci.ts), which
// the CLI may not import (tools/boundaries.ts), so --cluster does not pull it: it says so (exit 2)
// unless --bundle names a local copy, which is then checked against the running revision as usual.
import { PolicyVerificationConfig, bundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import type { BundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import { readFile } from 'node:fs/promises';
import { BundleError, readBundle, readBundleBytes } from '../../../lib/src/policy/bundle.ts';
import type { PolicyBundle } from '../../../lib/src/policy/bundle.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { CliError, EXIT_FAILED, EXIT_USAGE } from '../errors.ts';
import { kubeClient } from '../kube.ts';
import type { GlobalKubeFlags } from '../kube.ts';
import type { Io } from '../program.ts';
import { clusterSummary, enforceFresh, planClusterEvaluation, staleCheck, withClusterOrganisation } from './cluster-eval.ts';
import type { ClusterPlan } from './cluster-eval.ts';
import { kubeReader, readClusterPolicy } from './cluster-source.ts';
import type { ClusterPolicy } from './cluster-source.ts';

export interface ClusterFlags extends GlobalKubeFlags {
  cluster?: boolean;
  allowStale?: boolean;
}

export interface ClusterLoaded {
  cluster: ClusterPolicy;
  plan: ClusterPlan;
  /** the bundle as read (its own data) */
  bundle: PolicyBundle;
  /** the data the policy runs with: the bundle's, the cluster's organisation in data.organisation */
  data: unknown;
  summary: Record<string, unknown>;
}

/**
 * Loads the bundle into the engine and puts the cluster's organisation in, with the engine's own
 * setOrganisation (as the sidecar does), so the engine reports the revision a sidecar would
 * (`<bundle>+org.<revision>`).
 */
export async function loadIntoEngine(engine: PolicyEngine, loaded: ClusterLoaded): Promise<void> {
  await engine.load(loaded.bundle);
  const org = loaded.cluster.organisation;
  if (org) engine.setOrganisation({ organisation: org.value, revision: org.revision });
}

/** The sidecars' signing key when it is inline in their settings (a mounted key file is not readable from here). */
function verificationOf(cluster: ClusterPolicy, io: Io): BundleVerification | undefined {
  const raw = (cluster.settings.policy as { verification?: unknown } | undefined)?.verification;
  if (raw === undefined) {
    // as the sidecar's requireVerification: a bundle read from the cluster is never taken unsigned
    if (cluster.customBundle?.release) throw new CliError(`the sidecars in ${cluster.namespace} refuse their bundle (ConfigMap ${cluster.customBundle.object}): policy.bundle release needs policy.verification in their settings, which has none, so they do not start (invalid sidecar configuration: policy.verification required)`, EXIT_FAILED);
    return undefined;
  }
  const parsed = PolicyVerificationConfig.safeParse(raw);
  if (!parsed.success) throw new CliError(`the sidecars' policy.verification setting is invalid (${parsed.error.issues[0]?.message}): they refuse every bundle`, EXIT_FAILED);
  if (parsed.data.publicKey === undefined) {
    io.err(`note: the sidecars verify the bundle with the key in ${parsed.data.publicKeyFile}, which is not readable from here: its signature is not checked\n`);
    return undefined;
  }
  return bundleVerification(parsed.data);
}

/** Why the sidecars would refuse the release namespace's bundle, or undefined (taken, or a key file not readable here). */
async function releaseRefusal(cluster: ClusterPolicy, path: string, object: string, io: Io): Promise<string | undefined> {
  try {
    const verification = verificationOf(cluster, io);
    if (!verification) return undefined;
    await readBundleBytes(await readFile(path), `configmap ${object}`, { verification });
    return undefined;
  } catch (err) {
    if (err instanceof BundleError) return `${err.message} (${err.code})`;
    if (err instanceof CliError) return err.message;
    throw err;
  }
}

export interface ClusterLoadOptions {
  /** the namespace whose sidecars count; default: -n, else the kubeconfig context's */
  namespace?: string | undefined;
  /** a local bundle to use instead of the cluster's own or the default */
  bundle?: string | undefined;
  /** whether the user named that bundle (--bundle) rather than it being the library's own build */
  explicit: boolean;
  defaultBundle: string;
}

export async function loadClusterPolicy(flags: ClusterFlags, o: ClusterLoadOptions, io: Io): Promise<ClusterLoaded> {
  const client = await kubeClient(flags);
  const namespace = o.namespace ?? client.namespace;
  const cluster = await readClusterPolicy(kubeReader(client), namespace);
  const source = cluster.bundleSource;
  if (source?.kind === 'oci' && o.bundle === undefined) {
    throw new CliError(
      `the sidecars in ${namespace} pull their policy from the registry (policy.bundle oci: ${source.reference}), which --cluster cannot fetch (the registry client is the sidecar's): pull it (oras pull ${source.reference}) and pass --bundle with its bundle.tar.gz; it is then compared with the revision the running sidecars report`,
      EXIT_USAGE,
    );
  }
  if (cluster.releaseProblem && o.bundle === undefined) {
    const p = cluster.releaseProblem;
    throw new CliError(`the sidecars in ${namespace} have no bundle to take from ConfigMap ${p.object} (policy.bundle release): ${p.message} (${p.code})`, EXIT_FAILED);
  }
  const release = cluster.customBundle;
  if (o.bundle !== undefined && release?.release && release.revision) {
    // A local build is compared with the release bundle's revision when no sidecar reports one: only
    // with a bundle the sidecars would take, not one they refuse (unsigned, another key, tampered).
    const refused = await releaseRefusal(cluster, release.path, release.object, io);
    if (refused) {
      io.err(`note: ConfigMap ${release.object} is refused by the sidecars' key (${refused}): its revision ${release.revision} is not taken for what they run\n`);
      const { revision: _dropped, ...rest } = release;
      cluster.customBundle = rest;
    }
  }
  const plan = planClusterEvaluation(cluster, { bundle: o.bundle, defaultBundle: o.defaultBundle });
  let bundle: PolicyBundle;
  try {
    const verification = plan.clusterBundle ? verificationOf(cluster, io) : undefined;
    if (plan.clusterBundle && cluster.customBundle?.release) {
      // the archive's bytes, verified before anything in them is parsed: the sidecar's path (bundle-remote.ts)
      const source = `configmap ${cluster.customBundle.object}`;
      bundle = await readBundleBytes(await readFile(plan.bundlePath), source, verification ? { verification } : {});
    } else {
      bundle = await readBundle(plan.bundlePath, plan.clusterBundle ? { verification } : {});
    }
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    if (plan.clusterBundle) throw new CliError(`the sidecars in ${namespace} refuse their bundle (ConfigMap ${cluster.customBundle?.release ? cluster.customBundle.object : cluster.customBundle?.configMap}): ${err.message} (${err.code})`, EXIT_FAILED);
    throw new CliError(`${err.message} (${err.code}); run \`make policy\` to build it, or pass --bundle`, EXIT_FAILED);
  }
  enforceFresh(staleCheck(plan, cluster, bundle.revision, o.explicit), flags.allowStale ?? false, (s) => io.err(s));
  for (const n of plan.notes) io.err(`note: ${n}\n`);
  return {
    cluster,
    plan,
    bundle,
    data: withClusterOrganisation(bundle, cluster).data,
    summary: clusterSummary(cluster, plan, bundle.revision),
  };
}
