// The node agent's readiness (the DaemonSet's exec probe): a node is protected only once the
// runtime's primary CNI configuration lists sluice's plugin last and the plugin's launcher is in
// the plugin directory. A container that is merely running is not that: the agent needs seconds
// (a Node start under load) to install the plugin, and a pod created meanwhile gets no rules — its
// check refuses it and it stays stuck. Without this probe `helm install --wait` and `kubectl rollout
// status daemonset/…` returned inside that window (measured: e2e/cluster/cni-whole-story.test.ts,
// the agent Deployment created 3 s before the entry). It reads two directories and never writes.
//   node cni/src/ready.ts --cni-conf-dir /host/cni/net.d --cni-bin-dir /host/cni/bin
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { asConflist, parseConfig, PLUGIN_TYPE, primaryConfigFile } from './conflist.ts';

export interface Readiness {
  ready: boolean;
  /** why (not) ready, for the probe's output (kubectl describe shows it) */
  reason: string;
}

export function nodeReadiness(confDir: string, binDir: string): Readiness {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch (err) {
    return { ready: false, reason: `cannot read the CNI configuration directory ${confDir}: ${(err as Error).message}` };
  }
  const primary = primaryConfigFile(names);
  if (!primary) return { ready: false, reason: `no CNI configuration in ${confDir} yet` };
  const parsed = parseConfig(readFileSync(join(confDir, primary), 'utf8'));
  if (!parsed) return { ready: false, reason: `${primary} does not parse` };
  const plugins = asConflist(parsed).plugins as { type?: unknown }[] | undefined;
  if (plugins?.at(-1)?.type !== PLUGIN_TYPE) return { ready: false, reason: `${PLUGIN_TYPE} is not the last plugin of ${primary}` };
  if (!existsSync(join(binDir, PLUGIN_TYPE))) return { ready: false, reason: `${PLUGIN_TYPE} is not in ${binDir}` };
  return { ready: true, reason: `${PLUGIN_TYPE} is the last plugin of ${primary}` };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { 'cni-conf-dir': { type: 'string', default: '/etc/cni/net.d' }, 'cni-bin-dir': { type: 'string', default: '/opt/cni/bin' } } });
  const r = nodeReadiness(values['cni-conf-dir'], values['cni-bin-dir']);
  process.stdout.write(`${r.reason}\n`);
  process.exit(r.ready ? 0 : 1);
}
