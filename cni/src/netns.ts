// Installs an interception plan inside a pod's network namespace from the node: the same `ip` and
// `iptables-restore --noflush` input the init container runs in init mode, entered with
// `ip netns exec` through a short-lived name in /run/netns that points at the sandbox's
// namespace as the runtime's process sees it (/proc/<plugin pid>/root/<CNI_NETNS>), so it works
// whether the agent runs on the host or in a pod with the host's PID namespace. Fails loudly;
// it never leaves its name behind and never touches the host's own network namespace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Code } from '../../api/src/codes.ts';
import type { InterceptionPlan } from '../../lib/src/interception/rules.ts';

/** Where `ip netns` and `ip -n` look names up (iproute2's NETNS_RUN_DIR; /var/run is often, not always, a link to /run). */
export const NETNS_RUN_DIR = '/run/netns';

export class NetnsError extends Error {
  readonly code = 'cni.install_failed' satisfies Code;
}

function run(cmd: string, args: string[], input?: string): void {
  const res = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 10_000 });
  if (res.error) throw new NetnsError(`${cmd}: ${res.error.message}`);
  if (res.status !== 0) throw new NetnsError(`${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr.trim()}`);
}

/** The sandbox's namespace file as seen from this process (hostPID or the host itself). */
export function netnsPath(pid: number, netns: string): string {
  if (!netns.startsWith('/') || netns.split('/').includes('..')) throw new NetnsError(`CNI_NETNS must be an absolute path, got "${netns}"`);
  return `/proc/${pid}/root${netns}`;
}

let counter = 0;

export function applyInNetns(path: string, plan: InterceptionPlan, options: { ipv6: boolean }): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true });
  const name = `sluice-cni-${process.pid}-${counter++}`;
  const link = join(NETNS_RUN_DIR, name);
  symlinkSync(path, link);
  try {
    for (const route of plan.routes) {
      if (!options.ipv6 && route[0] === '-6') continue;
      const [family, rest] = route[0] === '-6' ? [['-6'], route.slice(1)] : [[], route];
      run('ip', [...family, '-n', name, ...rest]);
    }
    run('ip', ['netns', 'exec', name, 'iptables-restore', '--noflush'], plan.iptables);
    if (options.ipv6) run('ip', ['netns', 'exec', name, 'ip6tables-restore', '--noflush'], plan.ip6tables);
  } finally {
    rmSync(link, { force: true });
  }
}
