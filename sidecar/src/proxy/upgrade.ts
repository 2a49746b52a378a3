// Protocol upgrades where the policy allows them. Only WebSocket is carried (websocket/handshake.ts
// refuses h2c and every other protocol): the gateway decides the upgrade request like any request
// (facts, `facts.upgrade`, outbound DLP on its head) and the decision must also say
// `allow_upgrade`. This module dials the named upstream (resolved and TLS-verified by the sidecar),
// sends sluice's own opening handshake (no extension offer), checks the upstream's 101, answers
// the agent with sluice's own 101 and hands both sockets to the inspecting relay
// (websocket/relay.ts). Nothing is relayed as raw bytes: an upstream that does not complete the
// handshake is a 502 to the agent, and its answer's body is never passed on.
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { Code, RequestSummary } from '../../../api/src/index.ts';
import { resolveOverride } from './passthrough.ts';
import { agentSwitchHead, checkUpstreamAccept, parseResponseHead } from '../websocket/handshake.ts';
import { relayWebSocket } from '../websocket/relay.ts';
import type { WsRelayOptions } from '../websocket/relay.ts';

type Headers = Record<string, string | string[] | undefined>;

export interface UpgradeDial {
  resolve: Readonly<Record<string, string>>;
  secureContext: SecureContext;
  connectTimeoutMs: number;
}

export interface UpgradeOutcome {
  /** The upstream did not complete the handshake: the agent gets this answer instead of a 101. */
  refused?(r: { status: number; code: Code; reason: string }): void;
  /** Both 101s are out; the relay runs. */
  opened?(protocol: string | undefined): void;
}

/**
 * Dials the upstream for `summary`, completes the WebSocket handshake both ways and relays the
 * connection through the inspecting relay. `head`: bytes the agent sent after its request head.
 */
export function openWebSocket(
  client: Socket,
  head: Buffer,
  requestHead: string,
  upstreamKey: string,
  agentHeaders: Headers,
  summary: RequestSummary,
  extraAgentHeaders: Record<string, string>,
  dial: UpgradeDial,
  relay: WsRelayOptions,
  outcome: UpgradeOutcome,
): void {
  // The agent's frames wait (in the socket) until the upstream has switched protocols.
  client.pause();
  const to = resolveOverride(dial.resolve, summary.host, summary.port);
  const upstream: Socket =
    summary.scheme === 'https'
      ? tlsConnect({ host: to.host, port: to.port, secureContext: dial.secureContext, ALPNProtocols: ['http/1.1'], ...(isIP(summary.host) ? {} : { servername: summary.host }) })
      : netConnect({ host: to.host, port: to.port });
  upstream.setTimeout(dial.connectTimeoutMs);
  let settled = false;
  let received = Buffer.alloc(0);
  // 502 for every code here, upstream.timeout included (the catalogue's 504 is a request's upstream timeout)
  const fail = (code: Code, reason: string) => {
    if (settled) return;
    settled = true;
    upstream.destroy();
    outcome.refused?.({ status: 502, code, reason });
  };
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const parsed = parseResponseHead(received);
    if (parsed === undefined) return;
    if ('error' in parsed) return fail('ws.upstream_handshake', parsed.error);
    const accepted = checkUpstreamAccept(parsed, agentHeaders, upstreamKey);
    if ('error' in accepted) return fail('ws.upstream_handshake', accepted.error);
    settled = true;
    upstream.off('data', onData);
    upstream.pause();
    upstream.setTimeout(0);
    upstream.removeAllListeners('timeout');
    upstream.removeAllListeners('error');
    upstream.removeAllListeners('close');
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.write(agentSwitchHead(agentHeaders, accepted.protocol, extraAgentHeaders));
    outcome.opened?.(accepted.protocol);
    relayWebSocket(client, upstream, head, parsed.rest, relay);
  };
  upstream.once(summary.scheme === 'https' ? 'secureConnect' : 'connect', () => {
    upstream.write(requestHead);
    upstream.on('data', onData);
  });
  upstream.once('timeout', () => fail('upstream.timeout', 'the upstream did not answer the WebSocket handshake in time'));
  upstream.once('error', (err) => fail('upstream.connect_error', `the upstream WebSocket connection failed: ${err.message}`));
  upstream.once('close', () => fail('ws.upstream_handshake', 'the upstream closed the connection before switching protocols'));
  client.once('close', () => {
    if (!settled) {
      settled = true;
      upstream.destroy();
    }
  });
}
