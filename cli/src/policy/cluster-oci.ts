// policy.bundle oci for `--cluster`: pulls the bundle the sidecars of a namespace pull, with the
// registry client they use (lib/src/policy/bundle-oci.ts), and writes the archive to a private temp
// file. The pull secret and the private CA are the ones the chart configures: the webhook's config
// names them as files the sidecar reads under sidecar.mounts (MOUNTS_DIR), and each such path maps
// back to the Secret or ConfigMap of the agent namespace the sidecar mounts it from, read here with
// the CLI's identity as the other --cluster reads are. Nothing here verifies: cluster-load.ts checks
// the archive with the sidecars' key before anything in it is parsed, as for policy.bundle release.
// Read-only towards the cluster and the registry; the pull secret goes only where the registry
// client sends credentials (the registry's own origin and the token realm it names, over HTTPS).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MOUNTS_DIR, SchemaError } from '../../../api/src/index.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import { OciClient, dockerCredentials, parseOciReference, pullOciBundle, registryAgent } from '../../../lib/src/policy/bundle-oci.ts';
import { CliError, EXIT_FAILED } from '../errors.ts';
import type { ClusterReader } from './cluster-source.ts';

/** The webhook's sidecar.policyOci (the chart's policy.bundle oci). */
export interface OciPolicySettings {
  reference: string;
  pullSecretFile?: string;
  caFile?: string;
}

/** One of the webhook's sidecar.mounts: a Secret or ConfigMap of the pod's namespace at MOUNTS_DIR/<name>. */
export interface SidecarMountRef {
  name: string;
  secret?: string;
  configMap?: string;
  items?: { key: string; path: string }[];
}

export type OciPull = { path: string; reference: string; manifestDigest: string } | { code: string; message: string };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** sidecar.policyOci and sidecar.mounts in the webhook's config.yaml; undefined without an oci source. */
export function ociSettingsOf(configYaml: string | undefined): { oci: OciPolicySettings; mounts: SidecarMountRef[] } | undefined {
  const s = (configYaml ? (parseYaml(configYaml) as { sidecar?: { policyOci?: Record<string, unknown> | null; mounts?: unknown } } | null) : null)?.sidecar;
  const reference = str(s?.policyOci?.reference);
  if (!reference) return undefined;
  const pullSecretFile = str(s?.policyOci?.pullSecretFile);
  const caFile = str(s?.policyOci?.caFile);
  const mounts = (Array.isArray(s?.mounts) ? (s.mounts as Record<string, unknown>[]) : []).flatMap((m): SidecarMountRef[] => {
    const name = str(m?.name);
    if (!name) return [];
    const items = Array.isArray(m.items) ? (m.items as { key?: unknown; path?: unknown }[]).flatMap((i) => (str(i?.key) && str(i?.path) ? [{ key: i.key as string, path: i.path as string }] : [])) : undefined;
    return [{ name, ...(str(m.secret) ? { secret: m.secret as string } : {}), ...(str(m.configMap) ? { configMap: m.configMap as string } : {}), ...(items ? { items } : {}) }];
  });
  return { oci: { reference, ...(pullSecretFile ? { pullSecretFile } : {}), ...(caFile ? { caFile } : {}) }, mounts };
}

/** Which object and key a file the sidecar reads under MOUNTS_DIR comes from, or why it cannot be told. */
export function mountedFileSource(path: string, mounts: readonly SidecarMountRef[]): { kind: 'Secret' | 'ConfigMap'; name: string; key: string } | { problem: string } {
  const prefix = `${MOUNTS_DIR}/`;
  if (!path.startsWith(prefix)) return { problem: `${path} is not under ${MOUNTS_DIR} (sidecar.mounts): not readable from here` };
  const [name, ...rest] = path.slice(prefix.length).split('/');
  const file = rest.join('/');
  const mount = mounts.find((m) => m.name === name);
  if (!mount || !file) return { problem: `${path}: no sidecar.mounts entry named "${name}" holds it` };
  // With items only the listed keys exist, each at its path; without, every key at its own name.
  const key = mount.items ? mount.items.find((i) => i.path === file)?.key : file;
  if (key === undefined) return { problem: `${path}: sidecar.mounts "${name}" lists no item at ${file}` };
  if (mount.secret) return { kind: 'Secret', name: mount.secret, key };
  if (mount.configMap) return { kind: 'ConfigMap', name: mount.configMap, key };
  return { problem: `${path}: sidecar.mounts "${name}" names no Secret or ConfigMap` };
}

function forbidden(err: unknown): boolean {
  return err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_FORBIDDEN';
}

/** The bytes of a file the sidecars of `namespace` read under MOUNTS_DIR, read from its object. */
async function readMountedFile(reader: ClusterReader, namespace: string, path: string, mounts: readonly SidecarMountRef[], what: string): Promise<Buffer | { code: string; message: string }> {
  const src = mountedFileSource(path, mounts);
  if ('problem' in src) return { code: 'bundle.source_unreachable', message: `${what}: ${src.problem}` };
  const object = `${src.kind} ${namespace}/${src.name}`;
  let doc: { data?: Record<string, string>; binaryData?: Record<string, string> } | undefined;
  try {
    doc = await reader.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}/${src.kind === 'Secret' ? 'secrets' : 'configmaps'}/${encodeURIComponent(src.name)}`);
  } catch (err) {
    if (forbidden(err)) return { code: 'bundle.source_unreachable', message: `${what}: you may not read ${object} (the sidecars mount it at ${path})` };
    return { code: 'bundle.source_unreachable', message: `${what}: cannot read ${object}: ${(err as Error).message}` };
  }
  if (!doc) return { code: 'bundle.source_unreachable', message: `${what}: ${object} does not exist, so the sidecars cannot read ${path} and do not start` };
  if (src.kind === 'Secret') {
    const b64 = doc.data?.[src.key];
    return b64 === undefined ? { code: 'bundle.source_unreachable', message: `${what}: ${object} has no key ${src.key}` } : Buffer.from(b64, 'base64');
  }
  const text = doc.data?.[src.key];
  const bin = doc.binaryData?.[src.key];
  if (text === undefined && bin === undefined) return { code: 'bundle.source_unreachable', message: `${what}: ${object} has no key ${src.key}` };
  return text !== undefined ? Buffer.from(text, 'utf8') : Buffer.from(bin!, 'base64');
}

/**
 * Pulls the bundle of `oci` once, as the sidecars of `namespace` pull it: with their pull secret,
 * their private CA (policyOci.caFile) and the extra roots of their settings (upstream.extraRootsFiles)
 * where those are mounted files. A problem a sidecar would record carries its code; a setting the
 * sidecar would refuse at start is a CliError (exit 1).
 */
export async function pullClusterOciBundle(
  reader: ClusterReader,
  namespace: string,
  source: { oci: OciPolicySettings; mounts: readonly SidecarMountRef[] },
  settings: Readonly<Record<string, unknown>>,
  note: (s: string) => void,
): Promise<OciPull> {
  const { oci, mounts } = source;
  let client: OciClient | undefined;
  try {
    const ref = parseOciReference(oci.reference);
    let credentials: { username: string; password: string } | undefined;
    if (oci.pullSecretFile) {
      const secret = await readMountedFile(reader, namespace, oci.pullSecretFile, mounts, 'the pull secret (policy.oci.pullSecretFile)');
      if (!Buffer.isBuffer(secret)) return secret;
      credentials = dockerCredentials(secret.toString('utf8'), ref.registry);
      if (!credentials) throw new SchemaError('invalid sidecar configuration', [`policy.oci.pullSecretFile: no credentials for ${ref.registry} in ${oci.pullSecretFile}`]);
    }
    const roots: string[] = [];
    const extra = (settings.upstream as { extraRootsFiles?: unknown } | undefined)?.extraRootsFiles;
    for (const file of Array.isArray(extra) ? extra.filter((f): f is string => typeof f === 'string') : []) {
      const pem = await readMountedFile(reader, namespace, file, mounts, 'a root of upstream.extraRootsFiles');
      if (Buffer.isBuffer(pem)) roots.push(pem.toString('utf8'));
      else note(`${pem.message}: the pull trusts the system roots${oci.caFile ? ' and policy.oci.caFile' : ''} without it`);
    }
    if (oci.caFile) {
      const pem = await readMountedFile(reader, namespace, oci.caFile, mounts, 'the registry CA (policy.oci.caFile)');
      if (!Buffer.isBuffer(pem)) return pem;
      roots.push(pem.toString('utf8'));
    }
    client = new OciClient(ref, { credentials, dispatcher: registryAgent({ extraRootsPem: roots }) });
    const pulled = await pullOciBundle(client);
    const path = join(mkdtempSync(join(tmpdir(), 'sluice-oci-bundle-')), 'bundle.tar.gz');
    writeFileSync(path, pulled.bytes, { mode: 0o600 });
    return { path, reference: oci.reference, manifestDigest: pulled.manifestDigest };
  } catch (err) {
    if (err instanceof BundleError) return { code: err.code, message: err.message };
    if (err instanceof SchemaError) throw new CliError(`the sidecars in ${namespace} do not start: ${err.message}`, EXIT_FAILED);
    throw err;
  } finally {
    await client?.close().catch(() => undefined);
  }
}
