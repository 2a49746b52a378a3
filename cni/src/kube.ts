// The node agent's read-only window on the API server: GET a pod, GET a ConfigMap by name, with
// its own credentials (the DaemonSet's service account in a pod; a kubeconfig with a token or a
// client certificate when run as a host process). It only reads, never retries on its own (the
// plugin's timeout bounds it) and never logs a credential.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';

const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubeError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export interface KubeGet {
  get(path: string): Promise<Record<string, unknown> | undefined>;
}

interface Access {
  server: string;
  token?: () => string;
  agent: Agent;
}

function b64OrFile(data: string | undefined, file: string | undefined): string | undefined {
  if (data) return Buffer.from(data, 'base64').toString();
  return file ? readFileSync(file, 'utf8') : undefined;
}

function fromKubeconfig(path: string): Access {
  type Named<T> = { name: string } & T;
  const kc = parseYaml(readFileSync(path, 'utf8')) as {
    'current-context': string;
    contexts: Named<{ context: { cluster: string; user: string } }>[];
    clusters: Named<{ cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }>[];
    users: Named<{ user: { token?: string; 'client-certificate-data'?: string; 'client-certificate'?: string; 'client-key-data'?: string; 'client-key'?: string } }>[];
  };
  const ctx = kc.contexts.find((c) => c.name === kc['current-context'])?.context;
  const cluster = kc.clusters.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = kc.users.find((u) => u.name === ctx?.user)?.user;
  if (!cluster || !user) throw new Error(`kubeconfig ${path}: the current context names no cluster or user`);
  const ca = b64OrFile(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = b64OrFile(user['client-certificate-data'], user['client-certificate']);
  const key = b64OrFile(user['client-key-data'], user['client-key']);
  const token = user.token;
  return { server: cluster.server.replace(/\/$/, ''), ...(token ? { token: () => token } : {}), agent: new Agent({ connect: { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) } }) };
}

function inCluster(): Access {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not running in a pod (no KUBERNETES_SERVICE_HOST) and no --kubeconfig given');
  const ca = readFileSync(`${IN_CLUSTER_DIR}/ca.crt`, 'utf8');
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, token: () => readFileSync(`${IN_CLUSTER_DIR}/token`, 'utf8').trim(), agent: new Agent({ connect: { ca } }) };
}

export function createKubeGet(kubeconfig: string | undefined, timeoutMs = 5000): KubeGet {
  const access = kubeconfig ? fromKubeconfig(kubeconfig) : inCluster();
  return {
    async get(path) {
      const res = await request(`${access.server}${path}`, {
        method: 'GET',
        dispatcher: access.agent,
        headers: { accept: 'application/json', ...(access.token ? { authorization: `Bearer ${access.token()}` } : {}) },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      }).catch((err: Error) => {
        throw new KubeError(`GET ${path}: ${err.message}`);
      });
      const text = await res.body.text();
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw new KubeError(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`, res.statusCode);
      return JSON.parse(text) as Record<string, unknown>;
    },
  };
}
