// Wire encoding of Loki pushes: golden protobuf bytes, the snappy block framing, the JSON body,
// and the stream labels (only namespace, pod, session). The real Loki accepts these in e2e/audit.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { uncompress } from 'snappyjs';
import { backoffDelayMs, parseRetryAfterMs } from '../../src/audit/backoff.ts';
import {
  decodePushProtobuf,
  encodePush,
  encodePushJson,
  encodePushProtobuf,
  formatLabels,
  groupLines,
  snappyStored,
} from '../../src/audit/loki-push.ts';

const testdata = join(import.meta.dirname, 'testdata');
const goldenLines = readFileSync(join(testdata, 'chain-golden.ndjson'), 'utf8').trim().split('\n');

describe('groupLines', () => {
  it('puts each session in one stream, keeps order, and timestamps by time and seq', () => {
    const { streams, bad, firstTimeMs } = groupLines(goldenLines);
    expect(bad).toEqual([]);
    expect(firstTimeMs).toBe(Date.parse('2025-01-02T03:04:05.000Z'));
    expect(streams).toHaveLength(1);
    expect(streams[0]!.labels).toEqual({ namespace: 'agents', pod: 'agent-7f9c', session: 'golden-session-1' });
    expect(streams[0]!.entries.map((e) => e.line)).toEqual(goldenLines);
    expect(streams[0]!.entries[1]!.ts).toBe(1735787045250000001n);
    const ts = streams[0]!.entries.map((e) => e.ts);
    for (let i = 1; i < ts.length; i++) expect(ts[i]! > ts[i - 1]!).toBe(true);
  });

  it('labels only with namespace, pod and session, never with request data', () => {
    const { streams } = groupLines(goldenLines);
    const text = formatLabels(streams[0]!.labels);
    expect(text).toBe('{namespace="agents", pod="agent-7f9c", session="golden-session-1"}');
    expect(text).not.toContain('github.com');
  });

  it('escapes label values', () => {
    expect(formatLabels({ namespace: 'a"b', pod: 'c\\d', session: 'e\nf' })).toBe('{namespace="a\\"b", pod="c\\\\d", session="e\\nf"}');
  });

  it('splits sessions into streams and returns lines it cannot label', () => {
    const other = goldenLines[1]!.replace('"session":"golden-session-1"', '"session":"s2"');
    const { streams, bad } = groupLines([goldenLines[0]!, other, 'not json', '{"seq":1}', goldenLines[2]!]);
    expect(streams.map((s) => [s.labels.session, s.entries.length])).toEqual([
      ['golden-session-1', 2],
      ['s2', 1],
    ]);
    expect(bad).toEqual(['not json', '{"seq":1}']);
  });
});

describe('push bodies', () => {
  const { streams } = groupLines(goldenLines.slice(0, 2));

  it('encodes the committed protobuf bytes (Loki push.proto field numbers)', () => {
    const hex = Buffer.from(encodePushProtobuf(streams)).toString('hex');
    const golden = join(testdata, 'push-golden.hex');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, `${hex}\n`);
    expect(hex).toBe(readFileSync(golden, 'utf8').trim());
    // streams = field 1 (length-delimited), labels = field 1 of the stream, entries = field 2.
    expect(hex.slice(0, 2)).toBe('0a');
  });

  it('decodes back to the same labels, timestamps and lines', () => {
    const decoded = decodePushProtobuf(encodePushProtobuf(streams));
    expect(decoded.streams).toEqual([
      { labels: formatLabels(streams[0]!.labels), entries: streams[0]!.entries.map((e) => ({ ts: e.ts, line: e.line })) },
    ]);
  });

  it('wraps protobuf in the snappy block format with the protobuf content type', () => {
    const body = encodePush(streams, 'protobuf');
    expect(body.contentType).toBe('application/x-protobuf');
    expect(Buffer.from(uncompress(body.body))).toEqual(Buffer.from(encodePushProtobuf(streams)));
  });

  it.each([0, 1, 60, 61, 65_535, 65_536, 65_537, 300_000])('frames %i bytes as uncompressed snappy literals any snappy decoder reads', (n) => {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
    const framed = snappyStored(bytes);
    expect(Buffer.from(uncompress(framed))).toEqual(Buffer.from(bytes));
    expect(framed.length).toBeLessThanOrEqual(n + 5 + 3 * Math.ceil(n / 65_536));
  });

  it('sends protobuf with compression none as a snappy block of the same protobuf', () => {
    const body = encodePush(streams, 'protobuf', 'none');
    expect(body.contentType).toBe('application/x-protobuf');
    expect(Buffer.from(uncompress(body.body))).toEqual(Buffer.from(encodePushProtobuf(streams)));
  });

  it('writes the JSON form with nanosecond strings', () => {
    const body = encodePush(streams, 'json');
    expect(body.contentType).toBe('application/json');
    const doc = JSON.parse(Buffer.from(encodePushJson(streams)).toString()) as { streams: { stream: unknown; values: [string, string][] }[] };
    expect(doc.streams[0]!.stream).toEqual({ namespace: 'agents', pod: 'agent-7f9c', session: 'golden-session-1' });
    expect(doc.streams[0]!.values).toEqual([
      ['1735787045000000000', goldenLines[0]],
      ['1735787045250000001', goldenLines[1]],
    ]);
  });
});

describe('backoff', () => {
  const policy = { initialMs: 100, maxMs: 5000 };

  it('grows exponentially under a cap, with full jitter', () => {
    expect(backoffDelayMs(0, policy, 0.999)).toBe(99);
    expect(backoffDelayMs(3, policy, 0.5)).toBe(400);
    expect(backoffDelayMs(10, policy, 0.999)).toBe(4995);
    expect(backoffDelayMs(1000, policy, 0.999)).toBe(4995);
    expect(backoffDelayMs(2, policy, 0)).toBe(0);
  });

  it('treats Retry-After as a floor, still capped', () => {
    expect(backoffDelayMs(0, policy, 0.1, 2000)).toBe(2000);
    expect(backoffDelayMs(0, policy, 0.1, 60_000)).toBe(5000);
  });

  it('reads Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfterMs('3', now)).toBe(3000);
    expect(parseRetryAfterMs('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
  });
});
