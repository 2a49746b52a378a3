// What a node changes on the host, recorded before it starts and put back after it stops: the
// sysctls the kubelet sets (vm.overcommit_memory, kernel.panic, …), /run/containerd (where
// containerd's shims put their sockets, a path the tools fix), the node's own cgroup root (the
// kubelet's cgroupRoot, so two nodes on one machine never share — and never clean up — each
// other's kubepods), the pod bridge and its veths, mounts under the node's directory.
// Synchronous on purpose: the same teardown runs from a process 'exit' handler, where nothing
// asynchronous completes. It only ever removes what this node made: its cgroup root, links on
// its own bridge, mounts under its own directory, shim sockets nobody listens on.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The sysctls a kubelet sets at start (pkg/kubelet/cm: setupKernelTunables) and ip_forward, which nothing here should touch. */
export const KUBELET_SYSCTLS = ['vm.overcommit_memory', 'vm.panic_on_oom', 'kernel.panic', 'kernel.panic_on_oops', 'kernel.keys.root_maxkeys', 'kernel.keys.root_maxbytes', 'net.ipv4.ip_forward'] as const;

export interface HostState {
  sysctls: Record<string, string>;
  runContainerdExisted: boolean;
  iptables: string;
  links: string[];
}

function sysctlPath(name: string): string {
  return join('/proc/sys', ...name.split('.'));
}

/** Every mounted cgroup hierarchy (v1 controllers, the hybrid unified one), once each. */
function cgroupRoots(): string[] {
  const roots = new Set<string>();
  for (const name of readdirSync('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', name);
    try {
      if (statSync(p).isDirectory() && existsSync(join(p, 'cgroup.procs'))) roots.add(realpathSync(p));
    } catch {
      // unreadable
    }
  }
  // A pure cgroup v2 host: /sys/fs/cgroup itself.
  if (!roots.size && existsSync('/sys/fs/cgroup/cgroup.procs')) roots.add('/sys/fs/cgroup');
  return [...roots];
}

/** The node's cgroup root (`/<name>` in every hierarchy), made before the kubelet starts: it refuses a missing one. */
export function createCgroupRoot(name: string): void {
  for (const root of cgroupRoots()) {
    const dir = join(root, name);
    if (!existsSync(dir)) mkdirSync(dir);
    // cgroup v1 cpuset: a new group has no CPUs or memory nodes until given its parent's.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(root, f)) && !readFileSync(join(dir, f), 'utf8').trim()) writeFileSync(join(dir, f), readFileSync(join(root, f), 'utf8').trim());
    }
  }
}

/** iptables-save without counters and comments, for a before/after comparison. */
export function iptablesSnapshot(): string {
  try {
    return execFileSync('iptables-save', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, ''))
      .join('\n');
  } catch {
    return '(iptables-save failed)';
  }
}

export function linkNames(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .sort();
}

export function recordHost(): HostState {
  const sysctls: Record<string, string> = {};
  for (const s of KUBELET_SYSCTLS) sysctls[s] = readFileSync(sysctlPath(s), 'utf8').trim();
  return { sysctls, runContainerdExisted: existsSync('/run/containerd'), iptables: iptablesSnapshot(), links: linkNames() };
}

function quietly(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/** Mounts whose mount point starts with one of `prefixes`, deepest first. */
function mountsUnder(prefixes: string[]): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((m) => m.replace(/\\040/g, ' '))
    .filter((m) => prefixes.some((p) => m === p || m.startsWith(`${p}/`)))
    .sort((a, b) => b.length - a.length);
}

export function unmountUnder(prefixes: string[]): void {
  for (const m of mountsUnder(prefixes)) if (!quietly('umount', [m])) quietly('umount', ['-l', m]);
}

/** Every process whose executable is `exe` and whose command line contains `needle`. */
export function processesOf(exe: string, needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/exe`) !== exe) continue;
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) continue;
      pids.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** SIGKILLs the processes still in the node's cgroup root (containers whose shim is gone), then removes it. */
export function removeCgroupRoot(name: string): string[] {
  const left: string[] = [];
  for (const root of cgroupRoots()) {
    const top = join(root, name);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      dirs.push(d);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(top);
    for (const d of dirs) {
      for (const f of ['cgroup.procs', 'tasks']) {
        const p = join(d, f);
        if (!existsSync(p)) continue;
        for (const pid of readFileSync(p, 'utf8').split('\n').filter(Boolean)) kill(Number(pid), 'SIGKILL');
      }
    }
    for (const d of dirs.reverse()) {
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          // EBUSY while a killed process is still exiting: wait a little (bounded)
          execFileSync('sleep', ['0.05']);
        }
      }
    }
    if (existsSync(top)) left.push(top);
  }
  return left;
}

export function deleteBridge(bridge: string): void {
  let veths: string[] = [];
  try {
    veths = execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(': ')[1]!.split('@')[0]!);
  } catch {
    // no bridge
  }
  for (const v of veths) quietly('ip', ['link', 'del', v]);
  quietly('ip', ['link', 'del', bridge]);
}

/** Puts back what recordHost saw; returns what differs afterwards (empty when the host is as it was). */
export function restoreHost(state: HostState, bridge: string): string[] {
  for (const [name, value] of Object.entries(state.sysctls)) {
    const path = sysctlPath(name);
    if (readFileSync(path, 'utf8').trim() !== value) {
      try {
        writeFileSync(path, value);
      } catch {
        // reported below
      }
    }
  }
  removeStaleShimSockets(state);
  const diffs: string[] = [];
  for (const [name, value] of Object.entries(state.sysctls)) {
    const now = readFileSync(sysctlPath(name), 'utf8').trim();
    if (now !== value) diffs.push(`sysctl ${name}=${now} (was ${value})`);
  }
  if (iptablesSnapshot() !== state.iptables) diffs.push('host iptables changed');
  // Only links a node makes count (its bridge, the CNI bridge plugin's vethXXXXXXXX): other tests
  // on this machine add and remove their own veths while a node runs.
  const ours = (l: string) => l === bridge || /^veth[0-9a-f]{8}$/.test(l);
  const added = linkNames().filter((l) => ours(l) && !state.links.includes(l));
  if (added.length) diffs.push(`links left: ${added.join(',')}`);
  return diffs;
}

/**
 * containerd's shims put their sockets in /run/containerd/s whatever the config says. Another node
 * (a second test run) may be using the directory, so only sockets nobody listens on are removed,
 * and the directories only when empty and made by this run.
 */
function removeStaleShimSockets(state: HostState): void {
  const dir = '/run/containerd/s';
  if (!existsSync(dir)) return;
  let listening: string;
  try {
    listening = execFileSync('ss', ['-xlnH'], { encoding: 'utf8' });
  } catch {
    return; // cannot tell which are live: leave them
  }
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (!listening.includes(p)) rmSync(p, { force: true });
  }
  if (state.runContainerdExisted) return;
  for (const d of [dir, '/run/containerd']) {
    try {
      rmdirSync(d);
    } catch {
      // not empty: another node's
    }
  }
}
