// Process plumbing for bench/proxy: start a peer pinned to one CPU (optionally in a private mount
// namespace whose /etc/hosts sends the benchmark name to the local upstream), wait for its port,
// and read its memory and CPU time from /proc — summed over the process and its descendants, so a
// proxy that forks helpers is charged for them. Never touches the machine's own /etc/hosts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';

export interface PinnedOptions {
  cpu: number;
  /** scheduling niceness (negative: ahead of the machine's other work; needs root) */
  nice?: number;
  /** bind-mounted over /etc/hosts inside a private mount namespace for this process only */
  hostsFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** where the child's stdout/stderr go; 'pipe' lets the caller read them */
  stdio?: 'ignore' | 'pipe';
  /** 'pipe' lets the caller write to the child */
  stdin?: 'ignore' | 'pipe';
}

/** Spawns `command` pinned to one CPU. The returned pid is the command's own (exec all the way). */
export function spawnPinned(command: string, args: string[], o: PinnedOptions): ChildProcess {
  const niced = o.nice ? ['nice', '-n', String(o.nice)] : [];
  const pinned = [...niced, 'taskset', '-c', String(o.cpu), command, ...args];
  const argv = o.hostsFile ? ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', o.hostsFile, ...pinned] : pinned;
  const stdio = o.stdio ?? 'ignore';
  return spawn(argv[0]!, argv.slice(1), { env: o.env ?? process.env, cwd: o.cwd, stdio: [o.stdin ?? 'ignore', stdio, stdio] });
}

/** Polls until a TCP connect to host:port succeeds (bounded), or throws naming the peer. */
export async function waitForPort(name: string, host: string, port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening on ${host}:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

// SIGTERM, then SIGKILL after a grace period: the e2e harness's helper, shared.
export { stopProcess } from '../../e2e/support/kube/cluster.ts';

interface ProcStat {
  ppid: number;
  /** utime + stime in clock ticks */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** The pid and every descendant's pid. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

function vmRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory (MB) of a process tree, from /proc/<pid>/status VmRSS. */
export function rssMb(pids: number[]): number {
  return pids.reduce((sum, p) => sum + vmRssKb(p), 0) / 1024;
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) consumed so far by a process tree. */
export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, p) => sum + (readStat(p)?.ticks ?? 0), 0) / TICKS_PER_SECOND;
}

/** Samples a process tree's RSS while `during` runs; returns its result, the peak RSS and CPU used. */
export async function watchWhile<T>(pids: number[] | undefined, during: Promise<T>, everyMs = 200): Promise<{ result: T; peakRssMb: number; cpuSeconds: number }> {
  if (!pids) return { result: await during, peakRssMb: NaN, cpuSeconds: NaN };
  const cpu0 = cpuSeconds(pids);
  let peak = rssMb(pids);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pids))), everyMs);
  try {
    const result = await during;
    peak = Math.max(peak, rssMb(pids));
    return { result, peakRssMb: peak, cpuSeconds: cpuSeconds(pids) - cpu0 };
  } finally {
    clearInterval(timer);
  }
}
