// The I/O of `--cluster`: reads the cluster's policy for a namespace (cluster-source.ts), picks and
// loads the bundle (the cluster's own policy ConfigMap, verified with the sidecars' inline key when
// they verify, or a local build checked for staleness), and puts the cluster's organisation into its
// data. Read-only towards the cluster.
// policy.bundle release: the release namespace's ConfigMap is verified as the sidecar verifies it
// (readBundleBytes' signature check with the key of the sidecars' settings): without a key, unsigned,
// signed by another key or tampered it is refused (exit 1) with the sidecar's code, never evaluated.
// policy.bundle oci: the bundle is pulled as the sidecars pull it (cluster-oci.ts: the registry
// client in lib/, the pull secret and CA the chart mounts into them, read from the cluster), then
// verified with their key as for release; a pull that fails (or one they would refuse) is what they
// record, with their code (exit 1), unless --bundle names a local copy.
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
import { bundleOrigin, clusterSummary, enforceFresh, planClusterEvaluation, staleCheck, withClusterOrganisation } from './cluster-eval.ts';
import type { ClusterPlan } from './cluster-eval.ts';
import { pullClusterOciBundle, ociSettingsOf } from './cluster-oci.ts';
import { kubeReader, readClusterPolicy, webhookConfigYaml } from './cluster-source.ts';
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
    if (cluster.customBundle?.release || cluster.customBundle?.oci) {
      const mode = cluster.customBundle.oci ? 'oci' : 'release';
      throw new CliError(`the sidecars in ${cluster.namespace} refuse their bundle (${bundleOrigin(cluster.customBundle)}): policy.bundle ${mode} needs policy.verification in their settings, which has none, so they do not start (invalid sidecar configuration: policy.verification required)`, EXIT_FAILED);
    }
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

/** The source name a sidecar gives the cluster's own bundle (bundle-remote.ts origins). */
function remoteSource(bundle: NonNullable<ClusterPolicy['customBundle']>): string {
  return bundle.oci ? `oci ${bundle.oci.reference}` : `configmap ${bundle.object}`;
}

/** Why the sidecars would refuse the release namespace's (or the registry's) bundle, or undefined (taken, or a key file not readable here). */
async function releaseRefusal(cluster: ClusterPolicy, bundle: NonNullable<ClusterPolicy['customBundle']>, io: Io): Promise<string | undefined> {
  try {
    const verification = verificationOf(cluster, io);
    if (!verification) return undefined;
    await readBundleBytes(await readFile(bundle.path), remoteSource(bundle), { verification });
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
  const reader = kubeReader(client);
  const cluster = await readClusterPolicy(reader, namespace);
  const source = cluster.bundleSource;
  if (source?.kind === 'oci') {
    const oci = ociSettingsOf(await webhookConfigYaml(reader));
    if (!oci) throw new CliError(`the webhook's policy.bundle oci reference ${source.reference} could not be read back from its config`, EXIT_USAGE);
    const pulled = await pullClusterOciBundle(reader, namespace, oci, cluster.settings, (s) => io.err(`note: ${s}\n`));
    if ('path' in pulled) {
      // unverified here, for the revision only; verified below before it is evaluated
      const revision = await readBundle(pulled.path).then((b) => b.revision || undefined, () => undefined);
      cluster.customBundle = { configMap: '', object: pulled.reference, path: pulled.path, ...(revision ? { revision } : {}), oci: { reference: pulled.reference, manifestDigest: pulled.manifestDigest } };
    } else if (o.bundle === undefined) {
      throw new CliError(`the sidecars in ${namespace} have no bundle to take from ${source.reference} (policy.bundle oci): ${pulled.message} (${pulled.code})`, EXIT_FAILED);
    } else {
      io.err(`note: ${source.reference} could not be pulled (${pulled.message} (${pulled.code})): ${o.bundle} is compared with the running sidecars' revision only\n`);
    }
  }
  if (cluster.releaseProblem && o.bundle === undefined) {
    const p = cluster.releaseProblem;
    throw new CliError(`the sidecars in ${namespace} have no bundle to take from ConfigMap ${p.object} (policy.bundle release): ${p.message} (${p.code})`, EXIT_FAILED);
  }
  const release = cluster.customBundle;
  if (o.bundle !== undefined && (release?.release || release?.oci) && release.revision) {
    // A local build is compared with the release bundle's revision when no sidecar reports one: only
    // with a bundle the sidecars would take, not one they refuse (unsigned, another key, tampered).
    const refused = await releaseRefusal(cluster, release, io);
    if (refused) {
      io.err(`note: ${bundleOrigin(release)} is refused by the sidecars' key (${refused}): its revision ${release.revision} is not taken for what they run\n`);
      const { revision: _dropped, ...rest } = release;
      cluster.customBundle = rest;
    }
  }
  const plan = planClusterEvaluation(cluster, { bundle: o.bundle, defaultBundle: o.defaultBundle });
  let bundle: PolicyBundle;
  try {
    const verification = plan.clusterBundle ? verificationOf(cluster, io) : undefined;
    if (plan.clusterBundle && (cluster.customBundle?.release || cluster.customBundle?.oci)) {
      // the archive's bytes, verified before anything in them is parsed: the sidecar's path (bundle-remote.ts)
      bundle = await readBundleBytes(await readFile(plan.bundlePath), remoteSource(cluster.customBundle), verification ? { verification } : {});
    } else {
      bundle = await readBundle(plan.bundlePath, plan.clusterBundle ? { verification } : {});
    }
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    if (plan.clusterBundle) {
      const cb = cluster.customBundle;
      const where = cb?.oci ? bundleOrigin(cb) : `ConfigMap ${cb?.release ? cb.object : cb?.configMap}`;
      throw new CliError(`the sidecars in ${namespace} refuse their bundle (${where}): ${err.message} (${err.code})`, EXIT_FAILED);
    }
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
