// A pod-like network namespace for e2e tests: the agent and the sidecar share it (as in a pod),
// upstreams live in the host namespace on the veth peer's address (IPv4 and IPv6), and the real
// interception rules are installed inside it. Processes run in it as a given UID through
// `ip netns exec` + `setpriv`, like containers running as non-root users. Needs root.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const AGENT_UID = 1000;
export const SIDECAR_UID = 1337;

function sh(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr || res.error?.message}`);
}

export function canCreateNetns(): { ok: boolean; reason?: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network-namespace tests need root' };
  for (const tool of ['ip', 'iptables-restore', 'ip6tables-restore', 'setpriv']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return { ok: false, reason: `${tool} is not installed (make tools installs it)` };
  }
  return { ok: true };
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  uid?: number;
  env?: Record<string, string>;
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
}

let counter = 0;

export class AgentNetns {
  readonly name: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostAddr4: string;
  readonly nsAddr4: string;
  readonly hostAddr6: string;
  readonly nsAddr6: string;
  /** A directory every UID can read: the bind-mounted repo, node, scratch space. */
  readonly shared: string;
  readonly repo: string;
  readonly node: string;
  readonly #children = new Set<ChildProcess>();
  #mounted = false;

  constructor(repoRoot: string) {
    const id = `${process.pid % 10000}${counter++}`;
    this.name = `sl-agent-${id}`;
    this.hostIf = `slh${id}`;
    this.nsIf = `sln${id}`;
    const a = 200 + (counter % 50);
    const b = (process.pid * 7 + counter) % 250;
    this.hostAddr4 = `10.${a}.${b}.1`;
    this.nsAddr4 = `10.${a}.${b}.2`;
    const h = ((process.pid << 4) + counter).toString(16).slice(-4);
    this.hostAddr6 = `fd5e:${h}::1`;
    this.nsAddr6 = `fd5e:${h}::2`;
    this.shared = mkdtempSync(join(tmpdir(), 'sluice-netns-'));
    chmodSync(this.shared, 0o755);
    this.repo = join(this.shared, 'repo');
    this.node = join(this.shared, 'bin', 'node');
    this.#setUp(repoRoot);
  }

  #setUp(repoRoot: string): void {
    // The checkout may live under a directory other UIDs cannot enter (/root); a bind mount
    // gives the sidecar's and the agent's UIDs a path they can read.
    mkdirSync(this.repo);
    sh('mount', ['--bind', repoRoot, this.repo]);
    this.#mounted = true;
    mkdirSync(join(this.shared, 'bin'));
    try {
      linkSync(process.execPath, this.node);
    } catch {
      copyFileSync(process.execPath, this.node);
    }
    chmodSync(this.node, 0o755);
    sh('ip', ['netns', 'add', this.name]);
    sh('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf]);
    sh('ip', ['link', 'set', this.nsIf, 'netns', this.name]);
    sh('ip', ['addr', 'add', `${this.hostAddr4}/30`, 'dev', this.hostIf]);
    sh('ip', ['-6', 'addr', 'add', `${this.hostAddr6}/64`, 'dev', this.hostIf, 'nodad']);
    sh('ip', ['link', 'set', this.hostIf, 'up']);
    const inNs = (...args: string[]) => sh('ip', ['netns', 'exec', this.name, ...args]);
    inNs('ip', 'link', 'set', 'lo', 'up');
    inNs('ip', 'addr', 'add', `${this.nsAddr4}/30`, 'dev', this.nsIf);
    inNs('ip', '-6', 'addr', 'add', `${this.nsAddr6}/64`, 'dev', this.nsIf, 'nodad');
    inNs('ip', 'link', 'set', this.nsIf, 'up');
    inNs('ip', 'route', 'add', 'default', 'via', this.hostAddr4);
    inNs('ip', '-6', 'route', 'add', 'default', 'via', this.hostAddr6);
    // Inside the namespace /etc/resolv.conf points at the host side; the interception rules
    // send it to the sidecar's DNS listener instead.
    mkdirSync(`/etc/netns/${this.name}`, { recursive: true });
    writeFileSync(`/etc/netns/${this.name}/resolv.conf`, `nameserver ${this.hostAddr4}\noptions ndots:1 timeout:2 attempts:1\n`);
  }

  /** A directory owned by `uid` under the shared area. */
  dirFor(uid: number, name: string): string {
    const dir = join(this.shared, name);
    mkdirSync(dir, { recursive: true });
    sh('chown', [`${uid}:${uid}`, dir]);
    return dir;
  }

  command(cmd: string, args: string[], uid: number | undefined): [string, string[]] {
    const prefix = ['netns', 'exec', this.name];
    if (uid === undefined || uid === 0) return ['ip', [...prefix, cmd, ...args]];
    return ['ip', [...prefix, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', cmd, ...args]];
  }

  spawn(cmd: string, args: string[], o: RunOptions & { stdio?: SpawnOptions['stdio'] } = {}): ChildProcess {
    const [c, a] = this.command(cmd, args, o.uid);
    const child = spawn(c, a, {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: this.shared, ...o.env },
      cwd: o.cwd ?? this.shared,
      stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'],
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Runs a command to completion (bounded by timeoutMs) and returns its output. */
  run(cmd: string, args: string[], o: RunOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = this.spawn(cmd, args, o);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      if (o.input !== undefined) child.stdin?.end(o.input);
      else child.stdin?.end();
    });
  }

  destroy(): void {
    for (const c of this.#children) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', this.name]);
    spawnSync('ip', ['link', 'del', this.hostIf]);
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
    if (this.#mounted && spawnSync('umount', [this.repo]).status !== 0) spawnSync('umount', ['-l', this.repo]);
    // Never remove recursively through the repo mount point: rmdir fails on a non-empty
    // directory, so a mount that is somehow still there keeps the checkout safe.
    try {
      rmdirSync(this.repo);
    } catch {
      return;
    }
    rmSync(this.shared, { recursive: true, force: true });
  }
}
