// The websocket settings are validated like every sidecar setting: defaults that bound everything,
// and a value that could never work (a rate below one message) refused with the field named.
import { describe, expect, test } from '@jest/globals';
import { WebSocketSettings, websocketSettings } from '../../src/websocket/settings.ts';
import { TokenBucket } from '../../src/websocket/rate.ts';

describe('websocket settings', () => {
  test('defaults: every limit finite', () => {
    expect(websocketSettings(undefined)).toMatchObject({
      maxMessageBytes: 1024 * 1024,
      idleTimeoutMs: 300_000,
      maxLifetimeMs: 3_600_000,
      rate: { connection: { messagesPerSecond: 500 }, sidecar: { messagesPerSecond: 2000 } },
      recording: { eventsPerSecond: 100, maxMessages: 256, maxBytes: 65536, sampleBytes: 256 },
    });
  });

  test('a byte rate below the largest message, an unknown field or a zero timeout is refused, naming the field', () => {
    const bad = (v: unknown) => WebSocketSettings.safeParse(v).error?.issues.map((i) => i.path.join('.'));
    expect(bad({ maxMessageBytes: 4 * 1024 * 1024, rate: { connection: { bytesPerSecond: 1024 * 1024 } } })).toEqual(['rate']);
    expect(bad({ idleTimeoutMs: 0 })).toEqual(['idleTimeoutMs']);
    expect(bad({ recording: { windowMs: 5 } })).toEqual(['recording']);
  });
});

describe('TokenBucket', () => {
  test('allows a second\'s worth at once, then refills with time', () => {
    const b = new TokenBucket(10, 0);
    expect(Array.from({ length: 11 }, () => b.take(1, 0))).toEqual([...Array<boolean>(10).fill(true), false]);
    expect(b.take(1, 50)).toBe(false);
    expect(b.take(1, 100)).toBe(true);
    expect(b.take(20, 10_000)).toBe(false);
  });
});
