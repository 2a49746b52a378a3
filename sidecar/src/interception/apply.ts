// The init container's job: install the interception plan in the pod's network namespace with
// the real tools (ip, iptables-restore, ip6tables-restore). Fails loudly: a pod whose rules did
// not install must not start its agents.
import { spawnSync } from 'node:child_process';
import type { Code } from '../../../api/src/codes.ts';
import type { InterceptionPlan } from '../../../lib/src/interception/rules.ts';

export class InterceptionError extends Error {
  readonly code = 'interception.install_failed' satisfies Code;
}

function run(cmd: string, args: string[], input?: string): void {
  const res = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (res.error) throw new InterceptionError(`${cmd}: ${res.error.message}`);
  if (res.status !== 0) throw new InterceptionError(`${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr.trim()}`);
}

export function applyInterception(plan: InterceptionPlan, options: { ipv6: boolean } = { ipv6: true }): void {
  for (const route of plan.routes) {
    if (!options.ipv6 && route[0] === '-6') continue;
    run('ip', route);
  }
  // --noflush keeps rules other components installed (CNI, service meshes) in place.
  run('iptables-restore', ['--noflush'], plan.iptables);
  if (options.ipv6) run('ip6tables-restore', ['--noflush'], plan.ip6tables);
}
