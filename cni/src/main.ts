// The sluice node agent (the DaemonSet's container, or a host process): installs the CNI plugin,
// keeps it in the node's CNI configuration, answers the plugin on a Unix socket, and on SIGTERM or
// SIGINT takes the plugin out of the configuration before it stops answering, so that a removed
// agent leaves no entry that would fail every new pod of the node. A crash (SIGKILL, OOM) leaves the
// entry in place on purpose: pods then fail to start with "agent unreachable" until it is back.
//   node cni/src/main.ts --cni-conf-dir /etc/cni/net.d --cni-bin-dir /opt/cni/bin [--host-cni-bin-dir D]
//        [--socket /var/run/sluice-cni/agent.sock] [--kubeconfig F] [--exempt-namespaces a,b] [--resync-seconds 5]
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { serve } from './agent.ts';
import { PLUGIN_TYPE } from './conflist.ts';
import type { SluicePluginEntry } from './conflist.ts';
import { installPlugin, keepConflist, removeFromConflists, removePlugin } from './installer.ts';
import type { Keeper } from './installer.ts';
import { createKubeGet } from './kube.ts';

const log = pino({ name: 'sluice-cni' });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'cni-conf-dir': { type: 'string', default: '/etc/cni/net.d' },
      'cni-bin-dir': { type: 'string', default: '/opt/cni/bin' },
      'host-cni-bin-dir': { type: 'string' },
      socket: { type: 'string', default: '/var/run/sluice-cni/agent.sock' },
      'host-socket': { type: 'string' },
      kubeconfig: { type: 'string' },
      'exempt-namespaces': { type: 'string', default: 'kube-system' },
      'resync-seconds': { type: 'string', default: '5' },
      'timeout-ms': { type: 'string', default: '10000' },
    },
  });
  const paths = { confDir: values['cni-conf-dir'], binDir: values['cni-bin-dir'], hostBinDir: values['host-cni-bin-dir'] ?? values['cni-bin-dir'] };
  const entry: SluicePluginEntry = {
    type: PLUGIN_TYPE,
    agentSocket: values['host-socket'] ?? values.socket,
    exemptNamespaces: values['exempt-namespaces'].split(',').map((s) => s.trim()).filter(Boolean),
    timeoutMs: Number(values['timeout-ms']),
  };
  // The signal handlers come first: a SIGTERM that lands between the entry's first write and a
  // later registration would take the default action (exit without removing the entry), leaving
  // every new pod of the node failing on a plugin nobody answers.
  let stopping = false;
  const live: { keeper?: Keeper; server?: Server } = {};
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    live.keeper?.stop();
    const changed = removeFromConflists(paths.confDir);
    removePlugin(paths);
    log.info({ signal, changed }, 'sluice CNI plugin removed from the CNI configuration; stopping');
    if (live.server) live.server.close(() => process.exit(0));
    else process.exit(0);
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const kube = createKubeGet(values.kubeconfig);
  mkdirSync(dirname(values.socket), { recursive: true, mode: 0o700 });
  live.server = await serve(values.socket, { kube, log });
  // Stopped while the socket was opening: install nothing (stop() already cleaned up).
  if (stopping) return;
  installPlugin(paths);
  // The socket answers before the entry exists: the runtime never calls a plugin nobody answers.
  live.keeper = keepConflist(paths.confDir, entry, (r) => log.info({ result: r, confDir: paths.confDir }, r === 'added' ? 'sluice CNI plugin added to the CNI configuration' : 'CNI configuration not usable yet'), Number(values['resync-seconds']) * 1000);
  log.info({ socket: values.socket, ...paths, exemptNamespaces: entry.exemptNamespaces }, 'sluice node agent ready');
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'sluice node agent failed to start');
  process.exit(1);
});
