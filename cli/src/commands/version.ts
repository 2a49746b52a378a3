// `kubectl sluice version [--client] [-o json|yaml]`: the client's version and build revision and,
// unless --client, what runs in the cluster: the API server's version, each sluice webhook
// Deployment (image, version label, ready replicas) and the sidecar versions on injected pods
// (from the injector's status annotation and the sidecar container's image). Read-only.
import type { Command } from 'commander';
import { LABEL_INJECTED, SIDECAR_CONTAINER, ANNOTATION_STATUS } from '../../../api/src/index.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import type { KubeRest } from '../../../lib/src/approvals/kube-rest.ts';
import { clientBuild } from '../build-info.ts';
import type { ClientBuild } from '../build-info.ts';
import { CliError, EXIT_FAILED } from '../errors.ts';
import { kubeClient } from '../kube.ts';
import type { GlobalKubeFlags } from '../kube.ts';
import { formatData, parseOutput } from '../output.ts';
import type { Io } from '../program.ts';

export interface WebhookVersion {
  namespace: string;
  name: string;
  version: string;
  image: string;
  ready: string;
}

export interface SidecarVersion {
  version: string;
  image: string;
  pods: number;
}

export interface VersionReport {
  clientVersion: ClientBuild;
  serverVersion?: { gitVersion: string; platform?: string };
  webhooks?: WebhookVersion[];
  sidecars?: SidecarVersion[];
}

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface DeploymentLike {
  metadata: Meta;
  spec?: { replicas?: number; template?: { spec?: { containers?: { name: string; image?: string }[] } } };
  status?: { readyReplicas?: number };
}
export interface PodLike {
  metadata: Meta;
  spec?: { containers?: { name: string; image?: string }[]; initContainers?: { name: string; image?: string }[] };
  status?: { phase?: string };
}

export const WEBHOOK_SELECTOR = 'app.kubernetes.io/part-of=sluice,app.kubernetes.io/component=webhook';

export function webhookVersions(items: readonly DeploymentLike[]): WebhookVersion[] {
  return items.map((d) => ({
    namespace: d.metadata.namespace ?? '',
    name: d.metadata.name ?? '',
    version: d.metadata.labels?.['app.kubernetes.io/version'] ?? 'unknown',
    image: d.spec?.template?.spec?.containers?.[0]?.image ?? 'unknown',
    ready: `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
  }));
}

/** The injector version a pod's status annotation records ("unknown" when unreadable). */
export function injectedVersion(pod: PodLike): string {
  try {
    const v = (JSON.parse(pod.metadata.annotations?.[ANNOTATION_STATUS] ?? '') as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function sidecarImage(pod: PodLike): string {
  // A native sidecar is an init container with restartPolicy Always; older injections used containers.
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.find((c) => c.name === SIDECAR_CONTAINER)?.image ?? 'unknown';
}

/** Injected pods grouped by (version, image), most pods first. */
export function sidecarVersions(pods: readonly PodLike[]): SidecarVersion[] {
  const groups = new Map<string, SidecarVersion>();
  for (const p of pods) {
    const version = injectedVersion(p);
    const image = sidecarImage(p);
    const key = `${version}\u0000${image}`;
    const g = groups.get(key) ?? { version, image, pods: 0 };
    g.pods++;
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.pods - a.pods || a.version.localeCompare(b.version));
}

/** Lists cluster-wide, or in the namespace when the caller may not list cluster-wide. */
async function listEither<T>(rest: KubeRest, group: string, resource: string, selector: string, namespace: string, wide: boolean): Promise<T[]> {
  const query = { labelSelector: selector };
  if (wide) {
    try {
      return (await rest.call<{ items: T[] }>('GET', `${group}/${resource}`, { query })).items;
    } catch (err) {
      if (!(err instanceof ApprovalApiError) || err.code !== 'SLUICE_APPROVAL_API_FORBIDDEN') throw err;
    }
  }
  return (await rest.call<{ items: T[] }>('GET', `${group}/namespaces/${encodeURIComponent(namespace)}/${resource}`, { query })).items;
}

export async function serverVersions(rest: KubeRest, flags: GlobalKubeFlags, namespace: string): Promise<Omit<VersionReport, 'clientVersion'>> {
  const server = await rest.call<{ gitVersion: string; platform?: string }>('GET', '/version');
  // -n narrows the search; without it, every namespace the caller may list.
  const wide = flags.namespace === undefined;
  const deployments = await listEither<DeploymentLike>(rest, '/apis/apps/v1', 'deployments', WEBHOOK_SELECTOR, namespace, wide);
  const pods = await listEither<PodLike>(rest, '/api/v1', 'pods', `${LABEL_INJECTED}=true`, namespace, wide);
  return { serverVersion: { gitVersion: server.gitVersion, ...(server.platform ? { platform: server.platform } : {}) }, webhooks: webhookVersions(deployments), sidecars: sidecarVersions(pods) };
}

export function versionText(r: VersionReport): string {
  const c = r.clientVersion;
  const lines = [`Client Version: ${c.version} (revision ${c.revision}, ${c.build}, node ${c.node}, ${c.platform})`];
  if (r.serverVersion) lines.push(`Server Version: ${r.serverVersion.gitVersion}`);
  if (r.webhooks) {
    if (!r.webhooks.length) lines.push('Webhook: not installed (no Deployment labelled app.kubernetes.io/part-of=sluice, component=webhook)');
    for (const w of r.webhooks) lines.push(`Webhook: ${w.namespace}/${w.name} ${w.version} (${w.image}), ${w.ready} ready`);
  }
  if (r.sidecars) {
    if (!r.sidecars.length) lines.push('Sidecars: no injected pods');
    for (const s of r.sidecars) lines.push(`Sidecars: ${s.version} on ${s.pods} pod${s.pods === 1 ? '' : 's'} (${s.image})`);
  }
  return `${lines.join('\n')}\n`;
}

interface VersionFlags extends GlobalKubeFlags {
  client?: boolean;
  output?: string;
}

async function versionCommand(flags: VersionFlags, io: Io): Promise<void> {
  const output = parseOutput(flags.output, ['text', 'json', 'yaml']);
  const report: VersionReport = { clientVersion: clientBuild() };
  const print = () => io.out(output === 'text' ? versionText(report) : formatData(report, output));
  if (flags.client) {
    print();
    return;
  }
  const { rest, namespace } = await kubeClient(flags);
  try {
    Object.assign(report, await serverVersions(rest, flags, namespace));
  } catch (err) {
    // Like kubectl: the client's version still printed, then what went wrong, exit 1.
    print();
    if (err instanceof ApprovalApiError) throw new CliError(`cannot read the server's versions: ${err.message} (use --client for the client's alone)`, EXIT_FAILED);
    throw err;
  }
  print();
}

export function registerVersionCommand(program: Command, io: Io): void {
  program
    .command('version')
    .description("print the client's version and, from the cluster, the API server's, the webhook's and the sidecars'")
    .option('--client', "the client's version only (no cluster needed)")
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .action((flags: VersionFlags) => versionCommand(flags, io));
}
