// Protocol upgrades (WebSocket) where the policy allows them: the request is decided like any
// other, the decision must also say `allow_upgrade`, and then the upgraded stream is relayed to
// the named upstream (resolved and TLS-verified by the sidecar) uninspected — its bytes are
// counted and recorded, its content is not. Everything else is a 403 on the upgrade request.
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { endToEndHeaders } from './hop-by-hop.ts';
import { resolveOverride } from './passthrough.ts';
import type { RequestSummary } from '../../../api/src/index.ts';

/** The request head sent upstream: end-to-end headers plus the upgrade it asks for. */
export function upgradeRequestHead(req: IncomingMessage, pathAndQuery: string, hostHeader: string): string {
  const headers = endToEndHeaders(req.headers);
  const lines = [`${req.method} ${pathAndQuery} HTTP/1.1`, `host: ${hostHeader}`, 'connection: Upgrade', `upgrade: ${String(req.headers.upgrade)}`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface UpgradeRelay {
  bytesIn: number;
  bytesOut: number;
  error?: string;
}

/** Dials the upstream for `summary` and relays both ways once connected. */
export function relayUpgrade(
  client: Socket,
  head: Buffer,
  requestHead: string,
  summary: RequestSummary,
  o: { resolve: Readonly<Record<string, string>>; secureContext: SecureContext; connectTimeoutMs: number },
  done: (r: UpgradeRelay) => void,
): void {
  const to = resolveOverride(o.resolve, summary.host, summary.port);
  const upstream: Socket =
    summary.scheme === 'https'
      ? tlsConnect({ host: to.host, port: to.port, secureContext: o.secureContext, ALPNProtocols: ['http/1.1'], ...(isIP(summary.host) ? {} : { servername: summary.host }) })
      : netConnect({ host: to.host, port: to.port });
  upstream.setTimeout(o.connectTimeoutMs);
  let finished = false;
  const finish = (error?: string) => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
    done({ bytesIn: upstream.bytesRead, bytesOut: upstream.bytesWritten, ...(error ? { error } : {}) });
  };
  upstream.once(summary.scheme === 'https' ? 'secureConnect' : 'connect', () => {
    upstream.setTimeout(0);
    upstream.write(requestHead);
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.once('timeout', () => finish('upstream connect timeout'));
  upstream.once('error', (err) => finish(err.message));
  client.once('error', () => finish());
  upstream.once('close', () => finish());
  client.once('close', () => finish());
}
