// The sidecar image's entry point: `proxy` runs the gateway, `init-network` installs the pod's
// interception rules (init container, NET_ADMIN), `check-network` proves that rules a CNI plugin
// installed are in place (CNI mode, no privileges). Configuration errors stop the process with a
// message naming the field. Each command imports only what it runs: the init container (on the
// pod's start-up path, before the sidecar) never loads the gateway, and the gateway never loads
// the rule installer.
import { pino } from 'pino';
import { SIDECAR_COMMANDS, SIDECAR_ENV, SchemaError } from '../../api/src/index.ts';
import { loadInterceptionSettings } from '../../lib/src/interception/settings.ts';
import type { ClusterPolicyRuntime } from './policy/cluster-runtime.ts';

const log = pino({ name: 'sluice' });

async function main(command: string | undefined): Promise<void> {
  if (command === SIDECAR_COMMANDS.initNetwork) {
    // The init container gets only the common env: it must not need the sidecar's own settings.
    const config = loadInterceptionSettings();
    const [{ planFromSettings }, { applyInterception }] = await Promise.all([import('../../lib/src/interception/plan.ts'), import('./interception/apply.ts')]);
    const plan = planFromSettings(config);
    applyInterception(plan, { ipv6: process.env[SIDECAR_ENV.ipv6] !== 'false' });
    log.info('interception rules installed');
    return;
  }
  if (command === SIDECAR_COMMANDS.checkNetwork) {
    // CNI mode: the node installed the rules; prove they work before the sidecar and the agent start.
    const config = loadInterceptionSettings();
    const { checkInterception } = await import('./interception/check.ts');
    await checkInterception({ proxyUID: config.proxyUID, transparentPort: config.ports.transparent, dnsPort: config.ports.dns, fakeIpv4Cidr: config.dns.ipv4Cidr, uid: process.getuid?.() ?? 0 });
    log.info('interception rules verified');
    return;
  }
  if (command !== SIDECAR_COMMANDS.proxy && command !== undefined) throw new SchemaError('usage', [`unknown command "${command}" (expected proxy, init-network or check-network)`]);
  const [{ loadSidecarConfig }, { startSidecar }] = await Promise.all([import('./config/sidecar-config.ts'), import('./sidecar.ts')]);
  let config = loadSidecarConfig();
  let clusterPolicy: ClusterPolicyRuntime | undefined;
  if (config.policy.cluster.enabled) {
    // The SluicePolicy objects give the settings too: nothing listens until a valid one is read
    // (the pod stays not ready, and the interception rules send the agent's traffic nowhere).
    const { ClusterPolicyRuntime } = await import('./policy/cluster-runtime.ts');
    clusterPolicy = await ClusterPolicyRuntime.create(config, (settings) => loadSidecarConfig(process.env, settings), log);
    log.info('waiting for a SluicePolicy that applies to this namespace');
    config = (await clusterPolicy.start()).config;
  }
  const sidecar = await startSidecar(config, { logger: log, ...(clusterPolicy ? { clusterPolicy } : {}) });
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    sidecar.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main(process.argv[2]).catch((err: unknown) => {
  if (err instanceof SchemaError) {
    log.fatal(err.message);
  } else {
    log.fatal({ err }, 'sidecar failed to start');
  }
  process.exit(1);
});
