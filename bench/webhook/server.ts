// One peer of the webhook benchmark, run in its own process so the load generator does not share
// its event loop: `node bench/webhook/server.ts <floor|sluice> <tlsDir>`. Prints its port on stdout.
//   floor  — an express HTTPS handler that parses the AdmissionReview JSON and answers a minimal
//            allowed review: the cost of HTTP + TLS + JSON alone.
//   sluice — the real webhook server (startWebhookServer) with the default config.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { startWebhookServer } from '../../webhook/src/server.ts';

const [mode, tlsDir] = process.argv.slice(2);
// Exit through process.exit so --cpu-prof and other exit hooks run when the runner stops the peer.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
if (!tlsDir || (mode !== 'floor' && mode !== 'sluice')) throw new Error('usage: server.ts <floor|sluice> <tlsDir>');

if (mode === 'floor') {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(express.json({ limit: 8 * 1024 * 1024, type: () => true }));
  app.post(/.*/, (req, res) => {
    const body = req.body as { request?: { uid?: string } };
    res.json({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: body.request?.uid, allowed: true } });
  });
  const server = createServer({ cert: readFileSync(join(tlsDir, 'tls.crt')), key: readFileSync(join(tlsDir, 'tls.key')) }, app);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
} else {
  const config = parseWebhookConfig({
    sidecar: { image: 'ghcr.io/sluice-dev/sluice:bench', tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }] },
    guard: { staticCredentialSecrets: ['aws-static-keys'] },
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tlsDir },
  });
  const running = await startWebhookServer(config, { registry: new Registry(), logger: pino({ level: 'warn' }) });
  console.log(JSON.stringify({ port: running.port }));
}
