// The sidecar image's entry point: `proxy` runs the gateway, `init-network` installs the pod's
// interception rules (init container, NET_ADMIN). Configuration errors stop the process with a
// message naming the field.
import { pino } from 'pino';
import { SchemaError } from '../../api/src/index.ts';
import { loadInterceptionSettings, loadSidecarConfig } from './config/sidecar-config.ts';
import { applyInterception } from './interception/apply.ts';
import { renderInterception } from './interception/rules.ts';
import { startSidecar } from './sidecar.ts';

const log = pino({ name: 'sluice' });

async function main(command: string | undefined): Promise<void> {
  if (command === 'init-network') {
    // The init container gets only the common env: it must not need the sidecar's own settings.
    const config = loadInterceptionSettings();
    const plan = renderInterception({
      proxyUID: config.proxyUID,
      transparentPort: config.ports.transparent,
      proxyPort: config.ports.proxy,
      dnsPort: config.ports.dns,
      adminPort: config.ports.admin,
      fakeIpv4Cidr: config.dns.ipv4Cidr,
      fakeIpv6Cidr: config.dns.ipv6Cidr,
    });
    applyInterception(plan, { ipv6: process.env.SLUICE_IPV6 !== 'false' });
    log.info('interception rules installed');
    return;
  }
  if (command !== 'proxy' && command !== undefined) throw new SchemaError('usage', [`unknown command "${command}" (expected proxy or init-network)`]);
  const config = loadSidecarConfig();
  const sidecar = await startSidecar(config, { logger: log });
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
