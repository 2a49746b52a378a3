// The admin port: /healthz (process alive), /readyz (policy loaded, trust written, listeners
// up — the startupProbe, so no agent container starts before), /metrics (Prometheus). The
// interception rules keep agent UIDs from reaching it.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { frontFaults, guardedHandler } from './proxy/server-events.ts';

export interface AdminOptions {
  host: string;
  port: number;
  registry: Registry;
  ready: () => { ready: boolean; reasons: string[] };
}

export async function startAdminServer(o: AdminOptions): Promise<{ server: Server; address: AddressInfo }> {
  // Guarded like every server sluice runs (server-events.ts): a throw closes that connection, logged.
  const server = createServer(guardedHandler('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const r = o.ready();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ready ? 'ready\n' : `not ready: ${r.reasons.join('; ')}\n`);
    } else if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404).end();
    }
  }, frontFaults(() => undefined)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return { server, address: server.address() as AddressInfo };
}
