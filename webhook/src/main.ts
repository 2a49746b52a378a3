// Entry point of the admission webhook: `node webhook/src/main.ts --config FILE`. Reads the YAML or
// JSON config (a bad value stops start-up naming the field), loads the serving certificate (in
// certificate mode "self" first gets or creates it and sets the registrations' caBundle), serves
// until SIGTERM/SIGINT, then drains. It prints one JSON log line "listening" with both ports.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { SchemaError } from '../../api/src/index.ts';
import { buildInfo, registerBuildInfo, sluiceVersion } from '../../api/src/build-info.ts';
import { parseWebhookConfig } from './config.ts';
import { kubeAccess } from './kube-reader.ts';
import { SelfCertManager } from './self-cert.ts';
import { startWebhookServer } from './server.ts';
import type { ServingCertError } from './serving-cert.ts';

const DEFAULT_CONFIG = '/etc/sluice/webhook/config.yaml';


async function main(argv: string[]): Promise<void> {
  const program = new Command('sluice-webhook')
    .description('sluice admission webhook: injects the egress sidecar and guards agent pods')
    .option('-c, --config <file>', 'YAML or JSON config file', process.env.SLUICE_WEBHOOK_CONFIG ?? DEFAULT_CONFIG)
    .option('--log-level <level>', 'pino log level', process.env.SLUICE_LOG_LEVEL ?? 'info')
    .parse(argv);
  const opts = program.opts<{ config: string; logLevel: string }>();
  const logger = pino({ level: opts.logLevel, base: { component: 'sluice-webhook' } });

  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(opts.config, 'utf8'));
  } catch (err) {
    logger.fatal(`cannot read config ${opts.config}: ${(err as Error).message}`);
    process.exit(2);
  }
  if (raw && typeof raw === 'object' && !('injectorVersion' in raw)) raw = { ...raw, injectorVersion: sluiceVersion() };
  let config;
  try {
    config = parseWebhookConfig(raw);
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    logger.fatal(err.message);
    process.exit(2);
  }

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry, buildInfo('webhook'));
  // Certificate mode "self": the CA and serving pair come from our own Secret, and the server
  // starts (and /readyz passes) only once every registration's caBundle holds that CA.
  let selfCert: SelfCertManager | undefined;
  if (config.selfCert) {
    try {
      selfCert = new SelfCertManager({
        config: config.selfCert,
        namespace: config.namespace,
        access: kubeAccess(config.kube),
        tlsDir: config.server.tlsDir,
        certFile: config.server.certFile,
        keyFile: config.server.keyFile,
        logger,
      });
    } catch (err) {
      logger.fatal({ code: 'SLUICE_WEBHOOK_SELF_CERT' }, `certificate mode self needs Kubernetes API access: ${(err as Error).message}`);
      process.exit(1);
    }
    const aborted = new AbortController();
    const abort = () => aborted.abort();
    process.once('SIGTERM', abort);
    process.once('SIGINT', abort);
    try {
      await selfCert.start(aborted.signal);
    } catch {
      process.exit(0);
    }
    process.off('SIGTERM', abort);
    process.off('SIGINT', abort);
  }

  let server;
  try {
    server = await startWebhookServer(config, { registry, logger });
  } catch (err) {
    logger.fatal({ code: (err as ServingCertError).code }, (err as Error).message);
    process.exit(1);
  }
  logger.info({ port: server.port, metricsPort: server.metricsPort, version: config.injectorVersion }, 'listening');

  const stop = (signal: string) => {
    logger.info({ signal }, 'draining');
    selfCert?.stop();
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main(process.argv);
