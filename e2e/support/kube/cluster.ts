// A real Kubernetes control plane for tests: etcd + kube-apiserver on free loopback ports, a
// generated CA, a service-account signing key and token-file users, so tests act as different
// people (a pod creator, an approver in sluice-approvers, an outsider, an admin). There is no
// controller-manager and no kubelet: the harness creates each namespace's `default`
// ServiceAccount itself, and pods stay Pending (tests that need running containers run them as
// processes). Everything lives in a temp directory removed by stop(); nothing is cached in the repo.
// It never talks to anything but 127.0.0.1.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request as undiciRequest } from 'undici';
import { stringify as toYaml } from 'yaml';
import { TestCA, generateSigningKey } from './pki.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const BIN = join(ROOT, '.tools', 'bin');

export interface KubeUser {
  name: string;
  uid: string;
  groups: string[];
  token: string;
}

export interface UserSpec {
  name: string;
  groups?: string[];
}

/** The people most tests need; `admin` is in system:masters. */
export const STANDARD_USERS = {
  admin: { name: 'admin@example.com', groups: ['system:masters'] },
  creator: { name: 'alice@example.com', groups: ['developers'] },
  approver: { name: 'bob@example.com', groups: ['sluice-approvers'] },
  outsider: { name: 'mallory@example.com', groups: [] },
} as const satisfies Record<string, UserSpec>;
export type StandardUser = keyof typeof STANDARD_USERS;

export interface NamespaceSpec {
  name: string;
  labels?: Record<string, string>;
}

export interface ClusterOptions {
  /** Extra users beyond STANDARD_USERS, keyed by handle. */
  users?: Record<string, UserSpec>;
  namespaces?: NamespaceSpec[];
  /** Extra kube-apiserver flags (`--name=value`). */
  apiserverArgs?: string[];
  /**
   * The address kube-apiserver serves on (default 127.0.0.1; e2e/cluster uses its node's bridge
   * address so pods reach it). Also the advertise address and a SAN of the serving certificate.
   */
  bindAddress?: string;
  /** kube-apiserver's port (default: a free one). */
  securePort?: number;
  /** `--service-cluster-ip-range` (default 10.96.0.0/16). */
  serviceClusterIpRange?: string;
  /** `--authorization-mode` (default RBAC; a node with a kubelet needs Node,RBAC). */
  authorizationModes?: string[];
  /** The cluster CA (default: a new one), for callers that issue certificates before the start. */
  ca?: TestCA;
  /** How long to wait for each process to become ready. */
  readyTimeoutMs?: number;
}

export interface StartTimings {
  etcdMs: number;
  apiserverMs: number;
  namespacesMs: number;
  totalMs: number;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export class KubeHarnessError extends Error {
  readonly code: 'SLUICE_KUBE_BINARY_MISSING' | 'SLUICE_KUBE_NOT_READY' | 'SLUICE_KUBE_EXITED';
  constructor(code: KubeHarnessError['code'], message: string) {
    super(message);
    this.name = 'KubeHarnessError';
    this.code = code;
  }
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function binary(name: 'etcd' | 'kube-apiserver'): string {
  const path = join(BIN, name);
  if (!existsSync(path)) throw new KubeHarnessError('SLUICE_KUBE_BINARY_MISSING', `${path} is missing: run \`make tools\` (tools/install.sh builds etcd and kube-apiserver)`);
  return path;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns a test service with stdout/stderr to a log file; killed with the test process if it crashes. */
export function startProcess(cmd: string, args: string[], logFile: string): ChildProcess {
  const log = createWriteStream(logFile);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls `probe` until it returns true; bounded by `timeoutMs`, fails early when the process exits. */
export async function waitReady(what: string, child: ChildProcess, logFile: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new KubeHarnessError('SLUICE_KUBE_EXITED', `${what} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(logFile)}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new KubeHarnessError('SLUICE_KUBE_NOT_READY', `${what} not ready after ${timeoutMs} ms:\n${tail(logFile)}`);
}

/** One rule of a Role. */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export class KubeCluster {
  readonly dir: string;
  readonly server: string;
  readonly ca: TestCA;
  readonly users: Readonly<Record<string, KubeUser>>;
  readonly timings: StartTimings;
  readonly #etcd: ChildProcess;
  readonly #apiserver: ChildProcess;
  readonly #dispatcher: Agent;
  readonly #discovery = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();

  private constructor(init: { dir: string; server: string; ca: TestCA; users: Record<string, KubeUser>; timings: StartTimings; etcd: ChildProcess; apiserver: ChildProcess; dispatcher: Agent }) {
    this.dir = init.dir;
    this.server = init.server;
    this.ca = init.ca;
    this.users = init.users;
    this.timings = init.timings;
    this.#etcd = init.etcd;
    this.#apiserver = init.apiserver;
    this.#dispatcher = init.dispatcher;
  }

  static async start(options: ClusterOptions = {}): Promise<KubeCluster> {
    const started = performance.now();
    const etcdBin = binary('etcd');
    const apiserverBin = binary('kube-apiserver');
    const timeout = options.readyTimeoutMs ?? 60_000;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kube-'));
    let etcd: ChildProcess | undefined;
    let apiserver: ChildProcess | undefined;
    try {
      const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), options.securePort ?? (await freePort())];
      const bind = options.bindAddress ?? '127.0.0.1';
      const ca = options.ca ?? (await TestCA.create('sluice e2e cluster CA'));
      const serving = await ca.issue('kube-apiserver', [...new Set(['127.0.0.1', bind, 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'])]);
      const sa = await generateSigningKey();
      const users: Record<string, KubeUser> = {};
      for (const [handle, spec] of Object.entries({ ...STANDARD_USERS, ...options.users })) {
        users[handle] = { name: spec.name, uid: `uid-${handle}`, groups: [...(spec.groups ?? [])], token: randomBytes(24).toString('hex') };
      }
      const files = {
        ca: join(dir, 'ca.crt'),
        cert: join(dir, 'apiserver.crt'),
        key: join(dir, 'apiserver.key'),
        saKey: join(dir, 'sa.key'),
        saPub: join(dir, 'sa.pub'),
        tokens: join(dir, 'tokens.csv'),
      };
      writeFileSync(files.ca, ca.certPem);
      writeFileSync(files.cert, serving.certPem);
      writeFileSync(files.key, serving.keyPem, { mode: 0o600 });
      writeFileSync(files.saKey, sa.privatePem, { mode: 0o600 });
      writeFileSync(files.saPub, sa.publicPem);
      writeFileSync(files.tokens, Object.values(users).map((u) => `${u.token},${u.name},${u.uid}${u.groups.length ? `,"${u.groups.join(',')}"` : ''}`).join('\n') + '\n', { mode: 0o600 });

      const etcdLog = join(dir, 'etcd.log');
      etcd = startProcess(etcdBin, [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${clientPort}`,
        `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ], etcdLog);
      const etcdProc = etcd;
      await waitReady('etcd', etcdProc, etcdLog, timeout, async () => {
        const res = await undiciRequest(`http://127.0.0.1:${clientPort}/health`);
        return (await res.body.text()).includes('"health":"true"');
      });
      const etcdMs = performance.now() - started;

      const apiLog = join(dir, 'kube-apiserver.log');
      apiserver = startProcess(apiserverBin, [
        `--etcd-servers=http://127.0.0.1:${clientPort}`,
        `--bind-address=${bind}`,
        `--secure-port=${securePort}`,
        `--advertise-address=${bind}`,
        `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${files.cert}`,
        `--tls-private-key-file=${files.key}`,
        `--client-ca-file=${files.ca}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${files.saPub}`,
        `--service-account-signing-key-file=${files.saKey}`,
        `--token-auth-file=${files.tokens}`,
        `--authorization-mode=${(options.authorizationModes ?? ['RBAC']).join(',')}`,
        `--service-cluster-ip-range=${options.serviceClusterIpRange ?? '10.96.0.0/16'}`,
        '--allow-privileged=true',
        '--endpoint-reconciler-type=none',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        ...(options.apiserverArgs ?? []),
      ], apiLog);
      const server = `https://${bind}:${securePort}`;
      const dispatcher = new Agent({ connect: { ca: ca.certPem }, keepAliveTimeout: 10_000 });
      const apiProc = apiserver;
      await waitReady('kube-apiserver', apiProc, apiLog, timeout, async () => {
        const res = await undiciRequest(`${server}/readyz`, { dispatcher, headers: { authorization: `Bearer ${users.admin!.token}` } });
        await res.body.dump();
        return res.statusCode === 200;
      });
      const apiserverMs = performance.now() - started - etcdMs;
      const timings: StartTimings = { etcdMs, apiserverMs, namespacesMs: 0, totalMs: 0 };
      const cluster = new KubeCluster({ dir, server, ca, users, timings, etcd: etcdProc, apiserver: apiProc, dispatcher });
      const nsStarted = performance.now();
      for (const ns of options.namespaces ?? []) await cluster.createNamespace(ns.name, ns.labels);
      timings.namespacesMs = performance.now() - nsStarted;
      timings.totalMs = performance.now() - started;
      return cluster;
    } catch (err) {
      if (apiserver) await stopProcess(apiserver);
      if (etcd) await stopProcess(etcd);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  user(handle: string): KubeUser {
    const u = this.users[handle];
    if (!u) throw new Error(`no such test user: ${handle}`);
    return u;
  }

  /** A kubeconfig file for one user (written on first use). */
  kubeconfigPath(handle: string): string {
    const path = join(this.dir, `kubeconfig-${handle}.yaml`);
    if (!existsSync(path)) {
      const u = this.user(handle);
      writeFileSync(
        path,
        toYaml({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'sluice-e2e', cluster: { server: this.server, 'certificate-authority-data': Buffer.from(this.ca.certPem).toString('base64') } }],
          users: [{ name: handle, user: { token: u.token } }],
          contexts: [{ name: handle, context: { cluster: 'sluice-e2e', user: handle } }],
          'current-context': handle,
        }),
        { mode: 0o600 },
      );
    }
    return path;
  }

  /** A @kubernetes/client-node KubeConfig acting as the user. */
  kubeConfig(handle: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath(handle));
    return kc;
  }

  /** A raw API call as the user: the stored JSON exactly as the server returns it. */
  request<T = Record<string, unknown>>(handle: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    return this.requestWithToken<T>(this.user(handle).token, method, path, body, contentType);
  }

  /** The same raw call with any bearer token (a ServiceAccount's, a pod-bound one). */
  async requestWithToken<T = Record<string, unknown>>(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    const res = await undiciRequest(`${this.server}${path}`, {
      method: method as 'GET',
      dispatcher: this.#dispatcher,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json, */*', ...(body === undefined ? {} : { 'content-type': contentType }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // non-JSON answers (e.g. an exec without upgrade) stay text
    }
    return { status: res.statusCode, body: parsed as T };
  }

  /** The REST path of an object's collection (namespaced or not), found through API discovery. */
  async collectionPath(obj: { apiVersion: string; kind: string; metadata?: { namespace?: string } }): Promise<string> {
    const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
    let resources = this.#discovery.get(base);
    if (!resources) {
      const res = await this.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('admin', 'GET', base);
      if (res.status !== 200) throw new Error(`discovery of ${base} failed: ${res.status}`);
      resources = res.body.resources.filter((r) => !r.name.includes('/'));
      this.#discovery.set(base, resources);
    }
    const r = resources.find((x) => x.kind === obj.kind);
    if (!r) throw new Error(`${obj.apiVersion} has no kind ${obj.kind}`);
    return r.namespaced ? `${base}/namespaces/${obj.metadata?.namespace ?? 'default'}/${r.name}` : `${base}/${r.name}`;
  }

  /** POSTs any object as the user (path from discovery); `query` like `dryRun=All`. */
  async create<T = Record<string, unknown>>(handle: string, obj: { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } }, query = ''): Promise<KubeResponse<T>> {
    return this.request<T>(handle, 'POST', `${await this.collectionPath(obj)}${query ? `?${query}` : ''}`, obj);
  }

  /** DELETEs an object by name as the user. */
  async delete(handle: string, obj: { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } }): Promise<KubeResponse> {
    return this.request(handle, 'DELETE', `${await this.collectionPath(obj)}/${obj.metadata?.name ?? ''}`);
  }

  /** Creates a namespace (with labels) and its `default` ServiceAccount, which no controller will. */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.#mustSucceed('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    await this.#mustSucceed('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  }

  /**
   * A Role with `rules` in `namespace`, bound to a test user (by handle), a group (`group:NAME`)
   * or a service account of that namespace (`serviceaccount:NAME`); returns once RBAC applies it.
   */
  async grant(subject: string, namespace: string, name: string, rules: RbacRule[]): Promise<void> {
    await this.#mustSucceed('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name }, rules });
    const subj = subject.startsWith('group:')
      ? { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: subject.slice('group:'.length) }
      : subject.startsWith('serviceaccount:')
        ? { kind: 'ServiceAccount', name: subject.slice('serviceaccount:'.length), namespace }
        : { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: this.user(subject).name };
    await this.#mustSucceed('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [subj],
    });
    await this.#untilAuthorized(subj, namespace, rules[0]);
  }

  /**
   * The RBAC authorizer serves from an informer cache, so a fresh binding takes effect a moment
   * later; wait (bounded) until a SubjectAccessReview for the first rule says allowed.
   */
  async #untilAuthorized(subj: { kind: string; name: string; namespace?: string }, namespace: string, rule: RbacRule | undefined): Promise<void> {
    if (!rule) return;
    const who =
      subj.kind === 'Group'
        ? { user: 'sluice-probe', groups: [subj.name] }
        : subj.kind === 'ServiceAccount'
          ? { user: `system:serviceaccount:${subj.namespace}:${subj.name}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${subj.namespace}`] }
          : { user: subj.name };
    const [resource, subresource] = (rule.resources[0] ?? '').split('/');
    const review = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        ...who,
        resourceAttributes: {
          namespace,
          group: rule.apiGroups[0] ?? '',
          resource,
          ...(subresource ? { subresource } : {}),
          ...(rule.resourceNames?.[0] ? { name: rule.resourceNames[0] } : {}),
          verb: rule.verbs[0],
        },
      },
    };
    for (let i = 0; i < 100; i++) {
      const res = await this.request<{ status?: { allowed?: boolean } }>('admin', 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', review);
      if (res.body.status?.allowed) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`RBAC grant for ${subj.kind} ${subj.name} in ${namespace} did not take effect within 5 s`);
  }

  async #mustSucceed(method: string, path: string, body: unknown): Promise<void> {
    const res = await this.request('admin', method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Path of the API server's log (for a failing test's diagnosis). */
  get apiserverLog(): string {
    return join(this.dir, 'kube-apiserver.log');
  }

  async stop(): Promise<void> {
    await stopProcess(this.#apiserver);
    await stopProcess(this.#etcd);
    await this.#dispatcher.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
