// The webhook's read-only window on the Kubernetes API: GET one object with the webhook's own
// credentials (the in-cluster service-account token, or a kubeconfig with a bearer token for
// tests and out-of-cluster runs), never the caller's. Used to check what a request claims against
// what the API server stores: the pod a token is bound to, the owner a controller names.
// It only ever reads, never retries on its own (the API server's webhook timeout bounds it) and
// never logs a token. A failure is a KubeReadError the caller turns into a refusal (fail closed).
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const KubeAccessConfig = z
  .object({
    /** A kubeconfig with a bearer token (tests, out-of-cluster); without it the pod's service account. */
    kubeconfig: z.string().min(1).optional(),
    /** Each read is abandoned after this (the API server's own webhook timeout is 5 s). */
    timeoutMs: z.number().int().min(100).max(10_000).default(2_000),
  })
  .strict();
export type KubeAccessConfig = z.infer<typeof KubeAccessConfig>;

export class KubeReadError extends Error {
  readonly code = 'SLUICE_WEBHOOK_KUBE_READ';
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'KubeReadError';
    this.status = status;
  }
}

/** What the review code needs: one object by REST path, or undefined when it does not exist. */
export interface KubeReader {
  get(path: string): Promise<Record<string, unknown> | undefined>;
}

/** Where and as whom the webhook reaches the API server (also used by self-cert.ts to write). */
export interface KubeAccess {
  server: string;
  token: () => string;
  dispatcher: Dispatcher;
}

const KubeconfigFile = z.looseObject({
  'current-context': z.string(),
  contexts: z.array(z.looseObject({ name: z.string(), context: z.looseObject({ cluster: z.string(), user: z.string() }) })),
  clusters: z.array(z.looseObject({ name: z.string(), cluster: z.looseObject({ server: z.string(), 'certificate-authority-data': z.string().optional(), 'certificate-authority': z.string().optional() }) })),
  users: z.array(z.looseObject({ name: z.string(), user: z.looseObject({ token: z.string().optional(), tokenFile: z.string().optional() }) })),
});

function fromKubeconfig(path: string): KubeAccess {
  const kc = KubeconfigFile.parse(parseYaml(readFileSync(path, 'utf8')));
  const ctx = kc.contexts.find((c) => c.name === kc['current-context'])?.context;
  const cluster = kc.clusters.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = kc.users.find((u) => u.name === ctx?.user)?.user;
  if (!ctx || !cluster || !user) throw new Error(`kubeconfig ${path}: the current context names no cluster or user`);
  const ca = cluster['certificate-authority-data'] ? Buffer.from(cluster['certificate-authority-data'], 'base64').toString() : cluster['certificate-authority'] ? readFileSync(cluster['certificate-authority'], 'utf8') : undefined;
  const { token, tokenFile } = user;
  if (!token && !tokenFile) throw new Error(`kubeconfig ${path}: the webhook authenticates with a bearer token (token or tokenFile)`);
  return { server: cluster.server.replace(/\/$/, ''), token: () => token ?? readFileSync(tokenFile!, 'utf8').trim(), dispatcher: new Agent({ connect: ca ? { ca } : {} }) };
}

function inCluster(): KubeAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not running in a pod (no KUBERNETES_SERVICE_HOST) and no kube.kubeconfig configured');
  const ca = readFileSync(`${IN_CLUSTER_DIR}/ca.crt`, 'utf8');
  // The kubelet rotates the projected token; read it per call (a page-cached small file).
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, token: () => readFileSync(`${IN_CLUSTER_DIR}/token`, 'utf8').trim(), dispatcher: new Agent({ connect: { ca } }) };
}

/** The webhook's own credentials: the configured kubeconfig, else the pod's service account. */
export function kubeAccess(config: KubeAccessConfig): KubeAccess {
  return config.kubeconfig ? fromKubeconfig(config.kubeconfig) : inCluster();
}

export function createKubeReader(config: KubeAccessConfig): KubeReader {
  const access = kubeAccess(config);
  return {
    async get(path) {
      let res;
      try {
        res = await request(`${access.server}${path}`, {
          method: 'GET',
          dispatcher: access.dispatcher,
          headers: { authorization: `Bearer ${access.token()}`, accept: 'application/json' },
          headersTimeout: config.timeoutMs,
          bodyTimeout: config.timeoutMs,
          signal: AbortSignal.timeout(config.timeoutMs),
        });
      } catch (err) {
        throw new KubeReadError(`GET ${path}: API server unreachable (${(err as Error).message})`);
      }
      const text = await res.body.text();
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) {
        let message = text.slice(0, 300);
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not a Status object
        }
        throw new KubeReadError(`GET ${path}: ${res.statusCode} ${message}`, res.statusCode);
      }
      return JSON.parse(text) as Record<string, unknown>;
    },
  };
}
