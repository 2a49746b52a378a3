// Who the sidecar is to the API server, without a Kubernetes SDK: the pod's service account
// (KUBERNETES_SERVICE_HOST/PORT, the projected token re-read as the kubelet rotates it, the
// cluster CA) or one kubeconfig file whose user authenticates with a bearer token (token,
// tokenFile/token-file), a client certificate or basic auth, and whose cluster names a CA, a TLS
// server name or insecure-skip-tls-verify. Anything else a kubeconfig can say (exec plugins,
// auth-provider, proxy-url, several files merged, the default loading rules) is handed to
// @kubernetes/client-node, loaded only then, so such a kubeconfig keeps working exactly as before.
// It never logs a token, and refuses what client-node refuses (plain http without
// insecure-skip-tls-verify, a context or cluster that is not there) with the same ApprovalApiError.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import { ApprovalApiError } from './errors.ts';
import type { KubeIdentity } from './kube-client.ts';

export interface KubeSource {
  /** kubeconfig file(s) (KUBECONFIG-style list); absent → in-cluster, then the default loading rules */
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** Use the pod's service account (the sidecar); fails when not running in a pod. */
  inCluster?: boolean;
}

/** Where the kubelet mounts the service account's token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How long a token read from a file is used before it is read again (client-go's and client-node's minute). */
const TOKEN_FILE_TTL_MS = 60_000;

/** The user and cluster fields read here; a kubeconfig using any other goes to client-node. */
const USER_FIELDS = new Set(['token', 'tokenFile', 'token-file', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'username', 'password', 'as']);
const CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions', 'disable-compression']);

/** One named entry of a kubeconfig list (clusters, users, contexts). */
interface Named {
  name?: unknown;
  [key: string]: unknown;
}

/** A token read from a file, read again after TOKEN_FILE_TTL_MS (the kubelet rotates projected tokens). */
function tokenFromFile(path: string, now: () => number): () => string {
  let token = '';
  let readAt = -Infinity;
  return () => {
    if (now() - readAt > TOKEN_FILE_TTL_MS) {
      token = readFileSync(path, 'utf8').trim();
      readAt = now();
    }
    return token;
  };
}

interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

function identity(o: { server: string; user: string | undefined; namespace: string | undefined; tls: TlsSettings; headers: () => Record<string, string> }): KubeIdentity {
  // The scheme as the URL parser reads it (case and surrounding blanks ignored), exactly as every
  // call's URL will be built: a prefix check let `HTTP://` or ` http://` send the token in clear.
  let protocol: string;
  try {
    protocol = new URL(o.server).protocol;
  } catch {
    throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', `the API server ${JSON.stringify(o.server)} is not a URL`);
  }
  if (protocol !== 'https:' && !(protocol === 'http:' && o.tls.rejectUnauthorized === false)) {
    throw new ApprovalApiError(
      'SLUICE_APPROVAL_API_REJECTED',
      protocol === 'http:'
        ? `the API server ${o.server} is plain http: refused unless the kubeconfig says insecure-skip-tls-verify`
        : `the API server ${JSON.stringify(o.server)} is not an https URL`,
    );
  }
  // One pool for every call (client-node built an agent per call); 30 s keep-alive probes like client-go.
  const dispatcher: Dispatcher | undefined = Object.keys(o.tls).length ? new Agent({ connect: { ...o.tls, keepAlive: true, keepAliveInitialDelay: 30_000 } }) : undefined;
  return {
    server: o.server.replace(/\/$/, ''),
    user: o.user,
    namespace: o.namespace,
    authenticate: () => Promise.resolve({ headers: o.headers(), dispatcher }),
  };
}

/** The pod's service account, as client-node's loadFromCluster reads it. */
export function inClusterIdentity(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR, now: () => number = Date.now): KubeIdentity {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'not running in a pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const token = tokenFromFile(join(dir, 'token'), now);
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8');
  } catch {
    // no namespace file: the caller names one
  }
  return identity({
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    user: 'inClusterUser',
    namespace,
    tls: { ca: readFileSync(join(dir, 'ca.crt')) },
    headers: (): Record<string, string> => {
      const t = token();
      return t ? { Authorization: `Bearer ${t}` } : {};
    },
  });
}

function entries(list: unknown, key: string): Named[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', `the kubeconfig's ${key} is not a list`);
  return (list as unknown[]).map((e) => (e && typeof e === 'object' ? (e as Named) : {}));
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const absolute = (root: string, file: string) => (isAbsolute(file) ? file : join(root, file));

/**
 * One kubeconfig file read without client-node, or undefined when it uses something only
 * client-node knows (then the caller loads client-node).
 */
export function kubeconfigIdentity(file: string, context: string | undefined, now: () => number = Date.now): KubeIdentity | undefined {
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
  if (!doc || typeof doc !== 'object') throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'the kubeconfig has no current cluster');
  const contexts = entries(doc.contexts, 'contexts');
  const wanted = context ?? str(doc['current-context']);
  const ctx = contexts.find((c) => c.name === wanted)?.context as Record<string, unknown> | undefined;
  if (context && !ctx) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', `context "${context}" is not in the kubeconfig`);
  const cluster = entries(doc.clusters, 'clusters').find((c) => c.name === ctx?.cluster)?.cluster as Record<string, unknown> | undefined;
  if (!ctx || !cluster) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'the kubeconfig has no current cluster');
  const server = str(cluster.server);
  if (!server) throw new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'the kubeconfig has no current cluster');
  const userName = str(ctx.user);
  const user = (entries(doc.users, 'users').find((u) => u.name === userName)?.user ?? {}) as Record<string, unknown>;
  if (Object.keys(user).some((k) => !USER_FIELDS.has(k)) || Object.keys(cluster).some((k) => !CLUSTER_FIELDS.has(k))) return undefined;
  const root = dirname(file);
  const bytes = (path: unknown, data: unknown): Buffer | undefined => {
    if (str(path)) return readFileSync(absolute(root, str(path)!));
    if (str(data)) return Buffer.from(str(data)!, 'base64');
    return undefined;
  };
  const tls: TlsSettings = {};
  const ca = bytes(cluster['certificate-authority'], cluster['certificate-authority-data']);
  if (ca) tls.ca = ca;
  const cert = bytes(user['client-certificate'], user['client-certificate-data']);
  if (cert) tls.cert = cert;
  const key = bytes(user['client-key'], user['client-key-data']);
  if (key) tls.key = key;
  if (cluster['insecure-skip-tls-verify'] === true) tls.rejectUnauthorized = false;
  if (str(cluster['tls-server-name'])) tls.servername = str(cluster['tls-server-name'])!;
  const tokenPath = str(user.tokenFile) ?? str(user['token-file']);
  const token = str(user.token) ? () => str(user.token)! : tokenPath ? tokenFromFile(absolute(root, tokenPath), now) : undefined;
  const basic = str(user.username) ? `Basic ${Buffer.from(`${str(user.username)}:${typeof user.password === 'string' ? user.password : ''}`).toString('base64')}` : undefined;
  const as = str(user.as);
  return identity({
    server,
    user: userName,
    namespace: str(ctx.namespace),
    tls,
    headers: () => {
      const h: Record<string, string> = {};
      const t = token?.();
      // As client-node: a token wins over basic auth when both are given.
      if (t) h.Authorization = `Bearer ${t}`;
      else if (basic) h.Authorization = basic;
      if (as) h['Impersonate-User'] = as;
      return h;
    },
  });
}

/**
 * The identity for a source: the light readers above when they cover it, else client-node's
 * KubeConfig (imported only then) behind the same interface.
 */
export async function loadKubeIdentity(source: KubeSource): Promise<KubeIdentity> {
  const files = (source.kubeconfig ?? '').split(':').filter(Boolean);
  if (files.length === 1) {
    const light = kubeconfigIdentity(files[0]!, source.context);
    if (light) return light;
  } else if (!files.length && source.inCluster && !source.context) {
    return inClusterIdentity();
  }
  const { kubeConfigIdentity, loadKubeConfig } = await import('./kube-rest.ts');
  return kubeConfigIdentity(loadKubeConfig(source));
}
