// Tunnels a connection to its named destination without inspection: only for hosts the policy
// marks passthrough (pinned certificates, mTLS). The sidecar resolves and dials the name itself.
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export function resolveOverride(resolve: Readonly<Record<string, string>>, host: string, port: number): { host: string; port: number } {
  const override = resolve[`${host}:${port}`] ?? resolve[host];
  if (!override) return { host, port };
  const colon = override.lastIndexOf(':');
  return { host: override.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(override.slice(colon + 1)) };
}

export function tunnel(
  client: Socket,
  to: { host: string; port: number },
  connectTimeoutMs: number,
  done: (result: { ok: boolean; error?: string; bytesIn: number; bytesOut: number }) => void,
): void {
  const upstream = connect({ host: to.host, port: to.port, timeout: connectTimeoutMs });
  let finished = false;
  const finish = (ok: boolean, error?: string) => {
    if (finished) return;
    finished = true;
    done({ ok, error, bytesIn: upstream.bytesRead, bytesOut: upstream.bytesWritten });
  };
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
  upstream.on('error', (err) => {
    client.destroy();
    finish(false, err.message);
  });
  client.on('error', () => upstream.destroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => {
    client.destroy();
    finish(true);
  });
}
