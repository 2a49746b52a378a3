// The benchmark's upstream: one process (pinned by the caller) serving the same small body over
// plain HTTP and over HTTPS with a certificate for the benchmark host name, keep-alive on both.
// It must stay cheap: every peer's figures include its cost, so it does nothing but answer.
//   node bench/proxy/upstream.ts <host> <httpPort> <httpsPort> <certFile> <keyFile>
// Prints one JSON line {"ready":true} once both listeners are up.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

export const UPSTREAM_BODY = Buffer.from('{"name":"left-pad","dist-tags":{"latest":"1.3.0"},"served-by":"bench-upstream"}');

function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': UPSTREAM_BODY.length });
  res.end(UPSTREAM_BODY);
}

function keepAlive(server: Server): Server {
  // Longer than any run, so idle pooled connections are not cut between phases.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  return server;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

const [host, httpPort, httpsPort, certFile, keyFile] = process.argv.slice(2);
if (!host || !httpPort || !httpsPort || !certFile || !keyFile) {
  console.error('usage: upstream.ts <host> <httpPort> <httpsPort> <certFile> <keyFile>');
  process.exit(2);
}
const http = keepAlive(createHttpServer(answer));
const https = keepAlive(createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, answer));
await listen(http, host, Number(httpPort));
await listen(https, host, Number(httpsPort));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => process.exit(0));
