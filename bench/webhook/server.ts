// One peer of the webhook benchmark, run in its own process so the load generator does not share
// its event loop: `node bench/webhook/server.ts <floor|sluice> <tlsDir>`. Prints its port on stdout.
//   floor  — a bare node:http(s) handler that reads and parses the AdmissionReview JSON and answers
//            with the review sluice gives for that path (computed once per path, then only the uid
//            changes and it is serialised again): the cost of HTTP + TLS + the same JSON in and out.
//   sluice — the real webhook server (startWebhookServer) with the bench's config (config.ts).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseAdmissionReview } from '../../webhook/src/admission-review.ts';
import type { AdmissionReviewResponse } from '../../webhook/src/admission-review.ts';
import { reviewMutation, reviewValidation } from '../../webhook/src/review.ts';
import { startWebhookServer } from '../../webhook/src/server.ts';
import { benchConfig } from './config.ts';

const [mode, tlsDir] = process.argv.slice(2);
// Exit through process.exit so --cpu-prof and other exit hooks run when the runner stops the peer.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
if (!tlsDir || (mode !== 'floor' && mode !== 'sluice')) throw new Error('usage: server.ts <floor|sluice> <tlsDir>');

const config = benchConfig(tlsDir);

if (mode === 'floor') {
  const answers = new Map<string, AdmissionReviewResponse['response']>();
  // The TLS and HTTP settings of the webhook's own server (server.ts startWebhookServer).
  const server = createServer({ cert: readFileSync(join(tlsDir, 'tls.crt')), key: readFileSync(join(tlsDir, 'tls.key')), minVersion: 'TLSv1.2' }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
      const path = req.url ?? '/';
      let answer = answers.get(path);
      if (!answer) {
        const request = parseAdmissionReview(body);
        answer = (path.startsWith('/mutate') ? reviewMutation(request, 'pod', config) : reviewValidation(request, 'pod', config)).review.response;
        answers.set(path, answer);
      }
      const text = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { ...answer, uid: body.request.uid } });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
} else {
  const running = await startWebhookServer(config, { registry: new Registry(), logger: pino({ level: 'warn' }, pino.destination(2)) });
  console.log(JSON.stringify({ port: running.port }));
}
