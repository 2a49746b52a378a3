// A real single-node Kubernetes for tests: etcd + kube-apiserver (e2e/support/kube/cluster.ts),
// kube-controller-manager, kube-scheduler, containerd (runc, CNI bridge) and a kubelet, all
// built by tools/install.sh. Pods run for real: the kubelet's status, native sidecars, projected
// tokens, the container runtime's UID and capability handling are what a cluster does.
//
// Network: the control plane and containerd on loopback; pods on a private bridge this harness
// creates (no gateway, no NAT, no ip_forward: pods reach only the pod subnet and the bridge's own
// address). kube-apiserver serves on the bridge address, port 443, and the service range is the
// /28 that starts at that address, so the `kubernetes` Service's ClusterIP *is* the API server and
// in-cluster clients (the sluice sidecar) reach it without kube-proxy. Webhooks are called by url.
//
// Teardown puts the host back (host.ts): pods deleted through the API, the kubelet stopped,
// remaining tasks killed, containerd and its shims (found by their socket) stopped, mounts, the
// kubelet's cgroups, the bridge and /run/containerd removed, the kubelet's sysctls restored. It
// also runs from a process 'exit' handler, so a crashed test run leaves nothing behind.
// It never touches a process, link, mount or cgroup it did not make.
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeCluster, freePort, startProcess, stopProcess, waitReady } from '../support/kube/cluster.ts';
import type { UserSpec } from '../support/kube/cluster.ts';
import { TestCA } from '../support/kube/pki.ts';
import { NODE_HARNESS_LOCK, acquireMachineLock } from './machine-lock.ts';
import type { MachineLock } from './machine-lock.ts';
import { createCgroupRoot, deleteBridge, processesOf, recordHost, removeCgroupRoot, restoreHost, unmountUnder } from './host.ts';
import type { HostState } from './host.ts';
import type { TestImage } from './test-images.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, '.tools', 'bin');
const RUNC = '/usr/sbin/runc';
const CNI_BIN = '/usr/lib/cni';
const NODE_BINARIES = ['kubelet', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'containerd', 'containerd-shim-runc-v2', 'ctr'] as const;

export class NodeHarnessError extends Error {
  readonly code: 'SLUICE_NODE_PREREQUISITE' | 'SLUICE_NODE_NOT_READY';
  constructor(code: NodeHarnessError['code'], message: string) {
    super(message);
    this.name = 'NodeHarnessError';
    this.code = code;
  }
}

export interface NodeOptions {
  /** OCI archives to import (the sandbox image first is not required: `sandboxImage` names it). */
  images: TestImage[];
  /** The pod sandbox image (one of `images`). */
  sandboxImage: string;
  users?: Record<string, UserSpec>;
  /** Each component's readiness bound. */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags (e.g. `--enable-aggregator-routing=true`: Services resolved to endpoints, no kube-proxy needed). */
  apiserverArgs?: string[];
}

export interface NodeTimings {
  /** bridge, certificates, etcd and kube-apiserver /readyz */
  controlPlaneMs: number;
  containerdMs: number;
  imagesMs: number;
  kubeletHealthyMs: number;
  /** first process started → node Ready */
  totalMs: number;
}

/** The prerequisites a node needs, with the command that installs each; empty when all are there. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  for (const b of ['etcd', 'kube-apiserver', ...NODE_BINARIES]) if (!existsSync(join(BIN, b))) missing.push(`${join(BIN, b)} (tools/install.sh)`);
  if (!existsSync(RUNC)) missing.push(`${RUNC} (tools/apt.sh: runc)`);
  for (const p of ['bridge', 'host-local', 'loopback']) if (!existsSync(join(CNI_BIN, p))) missing.push(`${join(CNI_BIN, p)} (tools/apt.sh: containernetworking-plugins)`);
  if (process.getuid?.() !== 0) missing.push('root (a kubelet and containerd need it)');
  return missing;
}

/** A /24 in 10.247.0.0/16 that no address or route on this host uses yet. */
function freeSubnet(): string {
  const used = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'addr'], { encoding: 'utf8' });
  for (let i = 0; i < 256; i++) {
    const third = (process.pid + i) % 256;
    if (!used.includes(`10.247.${third}.`)) return `10.247.${third}`;
  }
  throw new NodeHarnessError('SLUICE_NODE_PREREQUISITE', 'no free /24 in 10.247.0.0/16 for the pod bridge');
}

function sh(cmd: string, args: string[], timeout = 60_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
}

const live = new Set<KubeNode>();
process.once('exit', () => {
  for (const node of live) node.teardownNow();
});
// Interrupted (Ctrl-C, a CI job cancelled): exit, so the 'exit' handlers above (and a start in
// progress's) tear the node down. Installed with the first node only, and only once.
let signalsHandled = false;
function exitOnSignals(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.once(signal, () => process.exit(code));
}

export class KubeNode {
  readonly cluster: KubeCluster;
  readonly dir: string;
  readonly nodeName: string;
  readonly bridge: string;
  /** the bridge's own address: node IP, API server address, the `kubernetes` Service's ClusterIP */
  readonly address: string;
  readonly podSubnet: string;
  readonly timings: NodeTimings;
  readonly containerdSocket: string;
  readonly #host: HostState;
  readonly #procs: Map<string, ChildProcess>;
  /** one node per machine (machine-lock.ts): released after the teardown put the host back */
  #lock: MachineLock | undefined;
  #stopped = false;

  private constructor(init: { cluster: KubeCluster; dir: string; nodeName: string; bridge: string; address: string; podSubnet: string; timings: NodeTimings; host: HostState; procs: Map<string, ChildProcess>; lock?: MachineLock }) {
    this.cluster = init.cluster;
    this.dir = init.dir;
    this.nodeName = init.nodeName;
    this.bridge = init.bridge;
    this.address = init.address;
    this.podSubnet = init.podSubnet;
    this.timings = init.timings;
    this.#host = init.host;
    this.#procs = init.procs;
    this.#lock = init.lock;
    this.containerdSocket = join(init.dir, 'run', 'containerd', 'containerd.sock');
  }

  static async start(options: NodeOptions): Promise<KubeNode> {
    const missing = missingPrerequisites();
    if (missing.length) throw new NodeHarnessError('SLUICE_NODE_PREREQUISITE', `a real node needs:\n  ${missing.join('\n  ')}`);
    exitOnSignals();
    // Never two nodes on one machine (sysctls saved and restored, /run/containerd, CPU): a second
    // start — another jest worker, another run — waits here, before recording the host.
    const lock = await acquireMachineLock(NODE_HARNESS_LOCK, { onWait: () => process.stderr.write(`real node: waiting for another node on this machine to stop (${NODE_HARNESS_LOCK})\n`) });
    const started = performance.now();
    const timeout = options.readyTimeoutMs ?? 90_000;
    const host = recordHost();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-node-'));
    const net = freeSubnet();
    const address = `${net}.1`;
    const bridge = `slcbr${process.pid % 10_000_000}`;
    const nodeName = 'sluice-node';
    const procs = new Map<string, ChildProcess>();
    // A stand-in registered before anything is created, so even a failed start is torn down on exit.
    const partial = { dir, bridge, host, procs, cluster: undefined as KubeCluster | undefined };
    const emergency = () => teardownSync({ ...partial, containerdSocket: join(dir, 'run', 'containerd', 'containerd.sock') });
    process.once('exit', emergency);
    try {
      createCgroupRoot(cgroupRootName(bridge));
      sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
      sh('ip', ['addr', 'add', `${address}/24`, 'dev', bridge]);
      sh('ip', ['link', 'set', bridge, 'up']);

      const ca = await TestCA.create('sluice e2e node CA');
      const pki = join(dir, 'pki');
      mkdirSync(pki);
      const write = (name: string, pem: string, mode = 0o644) => {
        writeFileSync(join(pki, name), pem, { mode });
        return join(pki, name);
      };
      const caFile = write('ca.crt', ca.certPem);
      const kubeletServing = await ca.issue(`system:node:${nodeName}`, [address, nodeName]);
      const apiToKubelet = await ca.issue('kube-apiserver-kubelet-client', []);
      const files = {
        kubeletCert: write('kubelet.crt', kubeletServing.certPem),
        kubeletKey: write('kubelet.key', kubeletServing.keyPem, 0o600),
        clientCert: write('apiserver-kubelet-client.crt', apiToKubelet.certPem),
        clientKey: write('apiserver-kubelet-client.key', apiToKubelet.keyPem, 0o600),
      };

      const cluster = await KubeCluster.start({
        ca,
        bindAddress: address,
        securePort: 443,
        // The /28 starting at the bridge address: the `kubernetes` Service gets its first IP, which is
        // the API server itself, so pods' in-cluster config works without kube-proxy.
        serviceClusterIpRange: `${net}.0/28`,
        authorizationModes: ['Node', 'RBAC'],
        readyTimeoutMs: timeout,
        users: {
          kubelet: { name: `system:node:${nodeName}`, groups: ['system:nodes'] },
          controllerManager: { name: 'system:kube-controller-manager' },
          scheduler: { name: 'system:kube-scheduler' },
          ...options.users,
        },
        apiserverArgs: [
          '--enable-admission-plugins=NodeRestriction',
          `--kubelet-client-certificate=${files.clientCert}`,
          `--kubelet-client-key=${files.clientKey}`,
          `--kubelet-certificate-authority=${caFile}`,
          '--kubelet-preferred-address-types=InternalIP',
          ...(options.apiserverArgs ?? []),
        ],
      });
      partial.cluster = cluster;
      // The API server's client certificate may use the kubelet API (logs, exec, port-forward).
      await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'sluice-e2e-apiserver-kubelet' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kubelet-api-admin' },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'kube-apiserver-kubelet-client' }],
      });
      const controlPlaneMs = performance.now() - started;

      const bin = (name: string) => join(BIN, name);
      const logs = join(dir, 'logs');
      mkdirSync(logs);
      const spawnLogged = (name: string, args: string[]) => {
        const child = startProcess(bin(name), args, join(logs, `${name}.log`));
        procs.set(name, child);
        return child;
      };
      const kcmPort = await freePort();
      spawnLogged('kube-controller-manager', [
        `--kubeconfig=${cluster.kubeconfigPath('controllerManager')}`,
        `--authentication-kubeconfig=${cluster.kubeconfigPath('controllerManager')}`,
        `--authorization-kubeconfig=${cluster.kubeconfigPath('controllerManager')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'kcm-certs')}`,
        '--leader-elect=false',
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${join(cluster.dir, 'sa.key')}`,
        `--root-ca-file=${caFile}`,
        `--service-cluster-ip-range=${net}.0/28`,
        '--profiling=false',
      ]);
      const schedPort = await freePort();
      spawnLogged('kube-scheduler', [
        `--kubeconfig=${cluster.kubeconfigPath('scheduler')}`,
        `--authentication-kubeconfig=${cluster.kubeconfigPath('scheduler')}`,
        `--authorization-kubeconfig=${cluster.kubeconfigPath('scheduler')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${schedPort}`,
        `--cert-dir=${join(dir, 'scheduler-certs')}`,
        '--leader-elect=false',
        '--profiling=false',
      ]);

      // containerd: everything under the node's directory, CRI with the imported sandbox image.
      const run = join(dir, 'run');
      const socket = join(run, 'containerd', 'containerd.sock');
      mkdirSync(join(run, 'containerd'), { recursive: true });
      mkdirSync(join(dir, 'cni', 'net.d'), { recursive: true });
      mkdirSync(join(dir, 'cni', 'bin'), { recursive: true });
      writeFileSync(join(dir, 'containerd.toml'), containerdConfig({ run, dir, sandboxImage: options.sandboxImage }));
      writeFileSync(join(dir, 'cni', 'net.d', '10-sluice-e2e.conflist'), JSON.stringify(cniConfig({ bridge, net, dir }), null, 2));
      const containerdStarted = performance.now();
      const containerd = spawnLogged('containerd', ['--config', join(dir, 'containerd.toml')]);
      await waitReady('containerd', containerd, join(logs, 'containerd.log'), timeout, () => {
        try {
          execFileSync(bin('ctr'), ['--address', socket, 'version'], { stdio: 'ignore', timeout: 5_000 });
          return Promise.resolve(true);
        } catch {
          return Promise.resolve(false);
        }
      });
      const containerdMs = performance.now() - containerdStarted;
      const imagesStarted = performance.now();
      for (const image of options.images) importImage(bin('ctr'), socket, image);
      const imagesMs = performance.now() - imagesStarted;

      const kubeletPort = await freePort();
      const healthzPort = await freePort();
      const kubeletRoot = join(dir, 'kubelet');
      mkdirSync(join(dir, 'pod-logs'), { recursive: true });
      writeFileSync(join(dir, 'kubelet.yaml'), kubeletConfig({ cgroupRoot: `/${cgroupRootName(bridge)}`, dir, socket, address, kubeletPort, healthzPort, caFile, cert: files.kubeletCert, key: files.kubeletKey }));
      const kubeletStarted = performance.now();
      const kubelet = spawnLogged('kubelet', [
        `--config=${join(dir, 'kubelet.yaml')}`,
        `--kubeconfig=${cluster.kubeconfigPath('kubelet')}`,
        `--root-dir=${kubeletRoot}`,
        `--hostname-override=${nodeName}`,
        `--node-ip=${address}`,
        '-v=1',
      ]);
      await waitReady('kubelet healthz', kubelet, join(logs, 'kubelet.log'), timeout, async () => {
        const res = await fetch(`http://127.0.0.1:${healthzPort}/healthz`);
        return res.ok;
      });
      const kubeletHealthyMs = performance.now() - kubeletStarted;
      const node = new KubeNode({ cluster, dir, nodeName, bridge, address, podSubnet: `${net}.0/24`, timings: { controlPlaneMs, containerdMs, imagesMs, kubeletHealthyMs, totalMs: 0 }, host, procs, lock });
      process.removeListener('exit', emergency);
      live.add(node);
      await waitReady('node Ready', kubelet, join(logs, 'kubelet.log'), timeout, async () => {
        const res = await cluster.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', `/api/v1/nodes/${nodeName}`);
        return res.body.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      });
      node.timings.totalMs = performance.now() - started;
      return node;
    } catch (err) {
      process.removeListener('exit', emergency);
      const node = [...live].find((n) => n.dir === dir);
      if (node) await node.stop();
      else {
        await partial.cluster?.stop().catch(() => undefined);
        teardownSync({ ...partial, containerdSocket: join(dir, 'run', 'containerd', 'containerd.sock') });
        lock.release();
      }
      throw err;
    }
  }

  /** A component's log file (kubelet, containerd, kube-controller-manager, kube-scheduler). */
  log(component: string): string {
    return join(this.dir, 'logs', `${component}.log`);
  }

  /** kubectl as one of the cluster's users; returns stdout, throws with stderr on failure. */
  kubectl(handle: string, args: string[], input?: string, timeoutMs = 60_000): string {
    try {
      return execFileSync(join(BIN, 'kubectl'), ['--kubeconfig', this.cluster.kubeconfigPath(handle), ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
    }
  }

  /** ctr in the CRI namespace (k8s.io). */
  ctr(args: string[]): string {
    return sh(join(BIN, 'ctr'), ['--address', this.containerdSocket, '-n', 'k8s.io', ...args]);
  }

  /** PID (on the host) of a running container's main process, by container id. */
  containerPid(containerId: string): number {
    const out = this.ctr(['tasks', 'ls']);
    const line = out.split('\n').find((l) => l.startsWith(containerId));
    if (!line) throw new Error(`no task for container ${containerId}:\n${out}`);
    return Number(line.split(/\s+/)[1]);
  }

  /**
   * Stops the node and puts the host back; returns what still differs from before (empty = clean).
   * `keepLogsIn`: the components' logs are copied there first (a failed run's evidence).
   */
  async stop(opts: { keepLogsIn?: string } = {}): Promise<string[]> {
    if (this.#stopped) return [];
    if (opts.keepLogsIn) {
      rmSync(opts.keepLogsIn, { recursive: true, force: true });
      cpSync(join(this.dir, 'logs'), opts.keepLogsIn, { recursive: true });
      cpSync(this.cluster.apiserverLog, join(opts.keepLogsIn, 'kube-apiserver.log'));
    }
    // Pods first, through the API, while the kubelet still runs: it stops their sandboxes (CNI DEL).
    try {
      const pods = await this.cluster.request<{ items: { metadata: { name: string; namespace: string } }[] }>('admin', 'GET', '/api/v1/pods');
      for (const p of pods.body.items ?? []) {
        await this.cluster.request('admin', 'DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}?gracePeriodSeconds=0`);
      }
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        // No task left means every sandbox was stopped, and with it its network (CNI DEL).
        if (!this.ctr(['tasks', 'ls', '-q']).trim()) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch {
      // the API server or containerd is gone: the synchronous teardown below still cleans up
    }
    const kubelet = this.#procs.get('kubelet');
    if (kubelet) await stopProcess(kubelet, 10_000);
    for (const name of ['kube-scheduler', 'kube-controller-manager']) {
      const p = this.#procs.get(name);
      if (p) await stopProcess(p, 10_000);
    }
    return this.#finish(() => this.cluster.stop());
  }

  async #finish(stopCluster: () => Promise<void>): Promise<string[]> {
    this.#stopped = true;
    live.delete(this);
    const diffs = teardownSync({ dir: this.dir, bridge: this.bridge, host: this.#host, procs: this.#procs, containerdSocket: this.containerdSocket, cluster: undefined });
    await stopCluster().catch(() => undefined);
    this.#lock?.release();
    return diffs;
  }

  /** The synchronous teardown for a process 'exit' handler (nothing asynchronous completes there). */
  teardownNow(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    teardownSync({ dir: this.dir, bridge: this.bridge, host: this.#host, procs: this.#procs, containerdSocket: this.containerdSocket, cluster: this.cluster });
    // cluster.ts's exit handler kills etcd and kube-apiserver but cannot wait to remove their directory.
    rmSync(this.cluster.dir, { recursive: true, force: true });
    this.#lock?.release();
  }
}

function killNow(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** The node's own cgroup root, named after its bridge (unique on the machine while it runs). */
function cgroupRootName(bridge: string): string {
  return `sluice-node-${bridge}`;
}

function teardownSync(t: { dir: string; bridge: string; host: HostState; procs: Map<string, ChildProcess>; containerdSocket: string; cluster: KubeCluster | undefined }): string[] {
  killNow(t.procs.get('kubelet'));
  const ctr = join(BIN, 'ctr');
  if (existsSync(t.containerdSocket)) {
    try {
      const tasks = sh(ctr, ['--address', t.containerdSocket, '-n', 'k8s.io', 'tasks', 'ls', '-q'], 10_000).split('\n').filter(Boolean);
      for (const id of tasks) {
        try {
          sh(ctr, ['--address', t.containerdSocket, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id], 10_000);
        } catch {
          // already stopped
        }
      }
    } catch {
      // containerd not answering: its shims and their containers are killed below
    }
  }
  for (const name of ['kube-scheduler', 'kube-controller-manager', 'containerd']) killNow(t.procs.get(name));
  // Shims outlive containerd by design; ours are the ones serving our socket's address.
  const shim = existsSync(join(BIN, 'containerd-shim-runc-v2')) ? realpathSync(join(BIN, 'containerd-shim-runc-v2')) : '';
  if (shim) {
    for (const pid of processesOf(shim, t.containerdSocket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  // (From an exit handler, cluster.ts's own exit handler kills etcd and kube-apiserver.)
  const leftCgroups = removeCgroupRoot(cgroupRootName(t.bridge));
  // Container rootfs, shm and pod netns mounts all live under the node's directory (state dir).
  unmountUnder([t.dir]);
  deleteBridge(t.bridge);
  const diffs = restoreHost(t.host, t.bridge);
  if (leftCgroups.length) diffs.push(`cgroups left: ${leftCgroups.join(', ')}`);
  rmSync(t.dir, { recursive: true, force: true });
  return diffs;
}

/** Imports an OCI archive into the CRI namespace and names it as pods refer to it. */
function importImage(ctr: string, socket: string, image: TestImage): void {
  const base = ['--address', socket, '-n', 'k8s.io'];
  // sluice's archives name their manifest by tag only (org.opencontainers.image.ref.name): --base-name
  // gives it a repository; the test images carry io.containerd.image.name already.
  const [repo] = image.name.split(/:(?=[^:/]+$)/);
  sh(ctr, [...base, 'images', 'import', '--base-name', repo!, image.archive], 120_000);
  const listed = sh(ctr, [...base, 'images', 'ls', '-q']);
  if (!listed.split('\n').includes(image.name)) throw new NodeHarnessError('SLUICE_NODE_NOT_READY', `importing ${image.archive} did not produce ${image.name}; containerd has:\n${listed}`);
}

function containerdConfig(c: { run: string; dir: string; sandboxImage: string }): string {
  return `# containerd for e2e/cluster: state under the node's directory, runc from Debian, CNI from Debian.
version = 3
root = '${c.run}/containerd/root'
state = '${c.run}/containerd/state'
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.tracing']

[grpc]
  address = '${c.run}/containerd/containerd.sock'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${c.sandboxImage}'

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    netns_mounts_under_state_dir = true
    # root on this kind of machine may lack CAP_SYS_RESOURCE: runc cannot lower a sandbox's
    # oom_score_adj below containerd's own, so clamp it instead of failing every sandbox.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '${RUNC}'
          SystemdCgroup = false
          Root = '${c.run}/runc'
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      # The node's own plugin directory next to Debian's: the sluice node agent installs its chained plugin there (e2e/cluster/cni-mode.test.ts).
      bin_dirs = ['${CNI_BIN}', '${c.dir}/cni/bin']
      conf_dir = '${c.dir}/cni/net.d'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`;
}

function cniConfig(c: { bridge: string; net: string; dir: string }): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'sluice-e2e',
    plugins: [
      {
        type: 'bridge',
        bridge: c.bridge,
        // No gateway, no masquerade: pods reach the pod subnet and the bridge address, nothing else.
        isGateway: false,
        ipMasq: false,
        hairpinMode: false,
        // Above the service /28 (.0-.15), so no pod takes the API server's ClusterIP range.
        ipam: { type: 'host-local', ranges: [[{ subnet: `${c.net}.0/24`, rangeStart: `${c.net}.32`, rangeEnd: `${c.net}.250` }]], dataDir: join(c.dir, 'cni', 'ipam') },
      },
    ],
  };
}

function kubeletConfig(c: { cgroupRoot: string; dir: string; socket: string; address: string; kubeletPort: number; healthzPort: number; caFile: string; cert: string; key: string }): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // cgroup v1 hosts (this machine is hybrid): Kubernetes >= 1.35 refuses them unless told.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      // Pods under the node's own cgroup root: a second kubelet on the machine (another test run)
      // would otherwise share /kubepods and kill this one's containers as orphans.
      cgroupRoot: c.cgroupRoot,
      failSwapOn: false,
      containerRuntimeEndpoint: `unix://${c.socket}`,
      imageServiceEndpoint: `unix://${c.socket}`,
      // Serves on the node IP (the bridge address) only; healthz on loopback.
      address: c.address,
      port: c.kubeletPort,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: c.healthzPort,
      tlsCertFile: c.cert,
      tlsPrivateKeyFile: c.key,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: c.caFile } },
      authorization: { mode: 'Webhook' },
      // No kube-proxy chains on the host, no static pods, pod logs under the node's directory.
      makeIPTablesUtilChains: false,
      podLogsDir: join(c.dir, 'pod-logs'),
      resolvConf: '/etc/resolv.conf',
      clusterDomain: 'cluster.local',
      // A shared machine's full disk must not evict the test pods; images are imported, never collected.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      shutdownGracePeriod: '0s',
      // Status reaches the API server promptly (tests read the kubelet's view of containers).
      nodeStatusUpdateFrequency: '5s',
      syncFrequency: '5s',
    },
    null,
    2,
  );
}
