// Encodes spooled audit lines as a Loki push body: protobuf (loki-push.proto) compressed with the
// snappy block format, or the JSON form. Pure: lines in, bytes out. Stream labels are only the
// pod's namespace and name and the session id, so a stream per pod start; never a path, host or
// anything the agent controls, which would make the store's index grow with user input.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Type, parse } from 'protobufjs';
import { compress, uncompress } from 'snappyjs';
import type { AuditEvent } from '../../../api/src/index.ts';
import { storeTimestampNs } from '../../../lib/src/audit/chain.ts';
import { canonicalJson } from '../../../lib/src/audit/canonical-json.ts';
import type { StoreConfig } from './config.ts';

export const PUSH_PATH = '/loki/api/v1/push';
export const PROTOBUF_CONTENT_TYPE = 'application/x-protobuf';
export const JSON_CONTENT_TYPE = 'application/json';

/** Where and with which headers a store takes pushes: the path and query are typed per store. */
export function pushTarget(store: StoreConfig): { url: string; headers: Record<string, string> } {
  const base = store.url.replace(/\/+$/, '');
  if (store.type === 'victorialogs') {
    const headers: Record<string, string> = {};
    if (store.accountID !== undefined) headers.accountid = String(store.accountID);
    if (store.projectID !== undefined) headers.projectid = String(store.projectID);
    // disable_message_parsing=1: VictoriaLogs keeps the line as _msg byte for byte instead of
    // unpacking the JSON into fields; the hash chain is over those bytes.
    return { url: `${base}${store.pushPath}${store.disableMessageParsing ? '?disable_message_parsing=1' : ''}`, headers };
  }
  return { url: `${base}${store.pushPath}`, headers: store.tenant ? { 'x-scope-orgid': store.tenant } : {} };
}

/** Why a store did not get an event's content (the stub and the chained notice say so). */
export type OmissionReason = 'store_refused_size' | 'over_max_entry_bytes';

export interface Omission {
  seq: number;
  hash: string;
  /** Bytes of the event line that was not shipped. */
  bytes: number;
  reason: OmissionReason;
  /** The store's HTTP status, when it refused. */
  status?: number;
}

/**
 * The line shipped instead of an event the store will not take: the event's chain fields (so the
 * links before and after it still verify) and what was omitted, never its content. Canonical
 * JSON, like every stored line. Undefined when `line` is not an event.
 */
export function omittedStub(line: string, o: Pick<Omission, 'bytes' | 'reason' | 'status'>): string | undefined {
  let ev: Partial<AuditEvent>;
  try {
    ev = JSON.parse(line) as Partial<AuditEvent>;
  } catch {
    return undefined;
  }
  if (typeof ev.seq !== 'number' || typeof ev.hash !== 'string' || typeof ev.session !== 'string') return undefined;
  const stub = {
    v: ev.v,
    id: ev.id,
    session: ev.session,
    seq: ev.seq,
    prev_hash: ev.prev_hash,
    hash: ev.hash,
    time: ev.time,
    kind: ev.kind,
    pod: ev.pod,
    ...(ev.request_id === undefined ? {} : { request_id: ev.request_id }),
    omitted: { bytes: o.bytes, reason: o.reason, ...(o.status === undefined ? {} : { status: o.status }) },
  };
  return canonicalJson(stub);
}

// protobufjs and the schema are loaded on the first protobuf push or decode, not when the
// recorder imports this module for entryTag: a sidecar that ships JSON or to no store never pays
// for them at start-up. Synchronous (require), so the encoders stay plain functions.
let pushRequestType: Type | undefined;
function pushRequest(): Type {
  if (!pushRequestType) {
    const protobuf = createRequire(import.meta.url)('protobufjs') as { parse: typeof parse };
    const root = protobuf.parse(readFileSync(new URL('./loki-push.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
    pushRequestType = root.lookupType('sluice.audit.loki.PushRequest');
  }
  return pushRequestType;
}

/** The only labels an audit stream carries. */
export interface StreamLabels {
  namespace: string;
  pod: string;
  session: string;
}

export interface PushEntry {
  /** Nanoseconds since the epoch. */
  ts: bigint;
  line: string;
}

export interface PushStream {
  labels: StreamLabels;
  entries: PushEntry[];
}

export interface PushBody {
  body: Uint8Array;
  contentType: string;
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus label-set text, keys in sorted order: what Loki's protobuf `labels` field holds. */
export function formatLabels(labels: StreamLabels): string {
  return `{namespace="${escapeLabelValue(labels.namespace)}", pod="${escapeLabelValue(labels.pod)}", session="${escapeLabelValue(labels.session)}"}`;
}

interface LineFields {
  session?: unknown;
  seq?: unknown;
  time?: unknown;
  pod?: { namespace?: unknown; name?: unknown };
}

/** What shipping needs to know about a spooled line; the recorder attaches it when it writes. */
export interface EntryTag {
  labels: StreamLabels;
  ts: bigint;
  timeMs: number;
}

/** The tag of an event, reusing `labels` when it is the same stream (one object per session). */
export function entryTag(event: Pick<AuditEvent, 'pod' | 'session' | 'time' | 'seq'>, labels?: StreamLabels): EntryTag {
  const same = labels && labels.session === event.session && labels.namespace === event.pod.namespace && labels.pod === event.pod.name;
  return {
    labels: same ? labels : { namespace: event.pod.namespace, pod: event.pod.name, session: event.session },
    ts: storeTimestampNs(event),
    timeMs: Date.parse(event.time),
  };
}

/**
 * Groups spooled lines into streams by (namespace, pod, session) keeping their order. A line's
 * tag, when the spool still had it in memory, saves parsing it. A line that is not an event with
 * those fields cannot be labelled or timestamped and is returned in `bad`.
 */
export function groupLines(
  lines: readonly string[],
  tags?: readonly (EntryTag | undefined)[],
): { streams: PushStream[]; bad: string[]; firstTimeMs: number | undefined } {
  const byKey = new Map<string, PushStream>();
  const bad: string[] = [];
  let firstTimeMs: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const tag = tags?.[i];
    if (tag) {
      firstTimeMs ??= tag.timeMs;
      const key = `${tag.labels.namespace}\u0000${tag.labels.pod}\u0000${tag.labels.session}`;
      let stream = byKey.get(key);
      if (!stream) {
        stream = { labels: tag.labels, entries: [] };
        byKey.set(key, stream);
      }
      stream.entries.push({ ts: tag.ts, line });
      continue;
    }
    let f: LineFields;
    try {
      f = JSON.parse(line) as LineFields;
    } catch {
      bad.push(line);
      continue;
    }
    const ns = f.pod?.namespace;
    const pod = f.pod?.name;
    if (typeof f.session !== 'string' || typeof f.seq !== 'number' || typeof f.time !== 'string' || typeof ns !== 'string' || typeof pod !== 'string') {
      bad.push(line);
      continue;
    }
    let ts: bigint;
    try {
      ts = storeTimestampNs({ time: f.time, seq: f.seq });
    } catch {
      bad.push(line);
      continue;
    }
    firstTimeMs ??= Date.parse(f.time);
    const key = `${ns}\u0000${pod}\u0000${f.session}`;
    let stream = byKey.get(key);
    if (!stream) {
      stream = { labels: { namespace: ns, pod, session: f.session }, entries: [] };
      byKey.set(key, stream);
    }
    stream.entries.push({ ts, line });
  }
  return { streams: [...byKey.values()], bad, firstTimeMs };
}

const NS_PER_S = 1_000_000_000n;

/** Protobuf PushRequest bytes, uncompressed. */
export function encodePushProtobuf(streams: readonly PushStream[]): Uint8Array {
  // Plain objects in the message's own shape: encode() takes them as they are (fromObject would
  // copy and convert every entry again, about a third of the cost).
  const message = {
    streams: streams.map((s) => ({
      labels: formatLabels(s.labels),
      entries: s.entries.map((e) => ({
        timestamp: { seconds: Number(e.ts / NS_PER_S), nanos: Number(e.ts % NS_PER_S) },
        line: e.line,
      })),
    })),
  };
  return pushRequest().encode(message).finish();
}

/** The body Loki expects for Content-Type application/x-protobuf: snappy block format. */
export function encodePushSnappy(streams: readonly PushStream[], compression: PushCompression = 'snappy'): Uint8Array {
  const raw = encodePushProtobuf(streams);
  return compression === 'snappy' ? compress(raw) : snappyStored(raw);
}

/** `snappy` compresses (snappyjs); `none` frames the bytes as snappy literals without compressing. */
export type PushCompression = 'snappy' | 'none';

const LITERAL_CHUNK = 65_536;

/**
 * `bytes` as a valid snappy block made only of literal elements: the format Loki requires for
 * protobuf pushes, at the cost of a copy instead of a compression pass (the pure-JS compressor
 * costs several microseconds per event; on a cluster network the bytes are cheaper than the CPU).
 */
export function snappyStored(bytes: Uint8Array): Uint8Array {
  const chunks = Math.ceil(bytes.length / LITERAL_CHUNK);
  const out = Buffer.allocUnsafe(10 + chunks * 3 + bytes.length);
  // Preamble: the uncompressed length as a varint.
  let at = 0;
  let n = bytes.length;
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  for (let from = 0; from < bytes.length; from += LITERAL_CHUNK) {
    const len = Math.min(LITERAL_CHUNK, bytes.length - from);
    // Literal tags as the reference encoder writes them: (len-1) in the tag up to 60 bytes, else
    // tag 60 or 61 followed by (len-1) in 1 or 2 little-endian bytes.
    if (len <= 60) {
      out[at++] = (len - 1) << 2;
    } else if (len <= 256) {
      out[at++] = 60 << 2;
      out[at++] = len - 1;
    } else {
      out[at++] = 61 << 2;
      out[at++] = (len - 1) & 0xff;
      out[at++] = (len - 1) >> 8;
    }
    out.set(bytes.subarray(from, from + len), at);
    at += len;
  }
  return out.subarray(0, at);
}

/** Loki's JSON push body: {"streams":[{"stream":{labels},"values":[["<ns>","<line>"]]}]}. */
export function encodePushJson(streams: readonly PushStream[]): Uint8Array {
  const doc = {
    streams: streams.map((s) => ({
      stream: { namespace: s.labels.namespace, pod: s.labels.pod, session: s.labels.session },
      values: s.entries.map((e) => [e.ts.toString(), e.line]),
    })),
  };
  return Buffer.from(JSON.stringify(doc));
}

export function encodePush(streams: readonly PushStream[], encoding: 'protobuf' | 'json', compression: PushCompression = 'snappy'): PushBody {
  return encoding === 'protobuf'
    ? { body: encodePushSnappy(streams, compression), contentType: PROTOBUF_CONTENT_TYPE }
    : { body: encodePushJson(streams), contentType: JSON_CONTENT_TYPE };
}

/** Decodes an uncompressed protobuf PushRequest (tests and the fault proxy read bodies back). */
export function decodePushProtobuf(bytes: Uint8Array): { streams: { labels: string; entries: { ts: bigint; line: string }[] }[] } {
  const type = pushRequest();
  const msg = type.toObject(type.decode(bytes), { longs: String, defaults: true }) as {
    streams: { labels: string; entries: { timestamp?: { seconds: string; nanos: number }; line: string }[] }[];
  };
  return {
    streams: msg.streams.map((s) => ({
      labels: s.labels,
      entries: s.entries.map((e) => ({ ts: BigInt(e.timestamp?.seconds ?? '0') * NS_PER_S + BigInt(e.timestamp?.nanos ?? 0), line: e.line })),
    })),
  };
}

/**
 * Decodes a push body as a store would (test stores and the fault-injecting proxy): snappy +
 * protobuf or JSON, by content type. Throws on anything else.
 */
export function decodePushBody(contentType: string, body: Uint8Array): { labels: string; entries: { ts: bigint; line: string }[] }[] {
  if (contentType.startsWith(PROTOBUF_CONTENT_TYPE)) return decodePushProtobuf(uncompress(body)).streams;
  if (contentType.startsWith(JSON_CONTENT_TYPE)) {
    const doc = JSON.parse(Buffer.from(body).toString('utf8')) as { streams: { stream: Record<string, string>; values: [string, string][] }[] };
    return doc.streams.map((s) => ({
      labels: `{${Object.entries(s.stream)
        .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
        .join(', ')}}`,
      entries: s.values.map(([ts, line]) => ({ ts: BigInt(ts), line })),
    }));
  }
  throw new Error(`unsupported push content type ${contentType}`);
}
