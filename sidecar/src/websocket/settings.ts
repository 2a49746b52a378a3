// The WebSocket settings of the sidecar config (`websocket:`), typed and validated: message limits
// (frames.ts), how long an upgraded connection may sit idle or live at all, how fast one
// connection and the whole sidecar may carry messages, and how messages are coalesced into audit
// events (recording.ts). Pure: a schema and its defaults; it never opens anything. Every bound is
// finite, so no setting can turn a WebSocket into an unbounded, unrecorded channel.
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;
const Millis = z.number().int().min(1).max(24 * 60 * 60 * 1000);

const Rate = (messages: number, bytes: number, who: string) =>
  z
    .object({
      messagesPerSecond: z.number().int().min(1).max(1_000_000).default(messages).describe(`messages (and control frames) ${who} may carry per second, both directions together; a burst of one second's worth is allowed`),
      bytesPerSecond: z.number().int().min(1 * KiB).max(1024 * MiB).default(bytes).describe(`payload bytes ${who} may carry per second, both directions together`),
    })
    .strict();

export const WebSocketSettings = z
  .object({
    maxMessageBytes: z.number().int().min(125).max(64 * MiB).default(1 * MiB).describe('largest message (all its fragments), in payload bytes: a bigger one closes the connection with 1009 (ws.message_too_large)'),
    maxFragments: z.number().int().min(1).max(65_536).default(1024).describe('most fragments one message may have'),
    idleTimeoutMs: Millis.default(300_000).describe('no text or binary message either way for this long closes the connection with 1001 (ws.idle_timeout); pings and pongs do not count as activity'),
    maxLifetimeMs: Millis.default(3_600_000).describe('an upgraded connection is closed with 1001 (ws.max_lifetime) this long after it opened, however busy; the client reconnects and is decided again by the policy of the day'),
    rate: z
      .object({
        connection: Rate(500, 8 * MiB, 'one connection').prefault({}),
        sidecar: Rate(2000, 32 * MiB, 'all of the sidecar\u2019s WebSocket connections').prefault({}),
      })
      .strict()
      .prefault({})
      .describe('over a rate, the connection that exceeds it is closed with 1008 (ws.rate_limited / ws.sidecar_rate_limited), recorded and counted'),
    recording: z
      .object({
        eventsPerSecond: z.number().int().min(1).max(10_000).default(100).describe('audit events a direction of one connection may write a second (a second\u2019s burst): within it a message is recorded at once; past it, messages wait for the next event and share it (so a flood costs events per second, not per message)'),
        maxMessages: z.number().int().min(1).max(4096).default(256).describe('most messages in one audit event'),
        maxBytes: z.number().int().min(1 * KiB).max(16 * MiB).default(64 * KiB).describe('payload bytes after which an audit event is written at once'),
        sampleBytes: z.number().int().min(0).max(4 * KiB).default(256).describe('with the decision\u2019s record_body: the first bytes of each message recorded (masked), with a SHA-256 of the whole message when it is longer'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  // A message bigger than a second's worth of bytes could never pass: every such message would close its connection.
  .refine((w) => w.rate.connection.bytesPerSecond >= w.maxMessageBytes && w.rate.sidecar.bytesPerSecond >= w.maxMessageBytes, {
    message: 'rate.connection.bytesPerSecond and rate.sidecar.bytesPerSecond must be at least maxMessageBytes',
    path: ['rate'],
  });

export type WebSocketSettings = z.infer<typeof WebSocketSettings>;
export type WebSocketSettingsInput = z.input<typeof WebSocketSettings>;

/** The defaults, validated once. */
export const DEFAULT_WEBSOCKET_SETTINGS: WebSocketSettings = Object.freeze(WebSocketSettings.parse({}));

/**
 * Settings from what a caller passes: a full WebSocketSettings (the sidecar config's, parsed
 * already), or a partial one (message limits only, as older callers pass), filled from the
 * defaults and validated; an invalid value throws (a caller's bug, not the agent's input).
 */
export function websocketSettings(given: Partial<WebSocketSettingsInput> | undefined): WebSocketSettings {
  if (!given || Object.keys(given).length === 0) return DEFAULT_WEBSOCKET_SETTINGS;
  let parsed = parsedOnce.get(given);
  if (!parsed) {
    parsed = Object.freeze(WebSocketSettings.parse(given));
    parsedOnce.set(given, parsed);
  }
  return parsed;
}

/** A caller passes the same (frozen) settings object for every connection: parsed once. */
const parsedOnce = new WeakMap<object, WebSocketSettings>();
