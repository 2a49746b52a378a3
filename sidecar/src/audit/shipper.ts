// Ships spooled audit lines with the Loki push API (to Loki or VictoriaLogs) in order, one batch in
// flight, and acknowledges a batch to the spool only after the store answered 2xx. Every failure is
// retried with capped, jittered exponential back-off: a batch is never skipped, so nothing written
// is ever lost; a store that keeps refusing fills the spool, which then fails closed (or drops) by
// config. The one exception is a single event the store refuses as too large (or over
// maxEntryBytes): retrying it could never succeed, so its line is replaced by an `omitted` stub
// after the recorder has chained a `dropped` event saying so. It must never let a network or store
// failure escape as an exception.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { backoffDelayMs, parseRetryAfterMs } from './backoff.ts';
import type { StoreConfig } from './config.ts';
import { encodePush, groupLines, omittedStub, pushTarget } from './loki-push.ts';
import type { EntryTag, Omission, PushStream } from './loki-push.ts';
import type { AuditMetrics } from './metrics.ts';
import { comparePositions } from './spool.ts';
import type { Spool, SpoolPosition } from './spool.ts';

export interface AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLogger: AuditLogger = { info: () => undefined, warn: () => undefined };

export interface ShipperDeps {
  spool: Spool<EntryTag>;
  config: StoreConfig;
  metrics?: AuditMetrics | undefined;
  /**
   * Makes a chained record of an omission durable before the stub replaces the event in the
   * store (what verify holds a stub to). Rejects when it cannot: the event is then retried.
   */
  recordOmission?: ((o: Omission) => Promise<void>) | undefined;
  /** Called after each acknowledged batch (the recorder re-evaluates the spool's state). */
  onAck?: (() => void) | undefined;
  clock: () => number;
  random: () => number;
  log: AuditLogger;
  /** An undici dispatcher to use instead of the shipper's own keep-alive Agent. */
  dispatcher?: Dispatcher | undefined;
}

export type PushOutcome = 'ok' | 'retry_network' | 'retry_status' | 'rejected';

/**
 * A refusal about size: 413, or a 400 whose text says so (Loki: "Max entry size '262144' bytes
 * exceeded"; gateways: "request entity too large"). Other 400s (auth, old timestamps) are not.
 */
export function isSizeRefusal(status: number, text: string): boolean {
  if (status === 413) return true;
  return status === 400 && /entry size|line size|too (large|long|big)|max(imum)?[ _-]*(line|entry|message|body|request)[ _-]*(size|length|bytes)/i.test(text);
}

class Stopped extends Error {}

/** Refused answers to one batch before it is split in halves. */
const SPLIT_AFTER_REFUSALS = 3;

function countEntries(streams: readonly PushStream[]): number {
  return streams.reduce((n, s) => n + s.entries.length, 0);
}

/** Two halves of a batch by entry count, in order (a stream may straddle the cut). */
export function splitStreams(streams: readonly PushStream[]): [PushStream[], PushStream[]] {
  let left = Math.floor(countEntries(streams) / 2);
  const first: PushStream[] = [];
  const second: PushStream[] = [];
  for (const s of streams) {
    if (left >= s.entries.length) {
      first.push(s);
      left -= s.entries.length;
    } else if (left > 0) {
      first.push({ labels: s.labels, entries: s.entries.slice(0, left) });
      second.push({ labels: s.labels, entries: s.entries.slice(left) });
      left = 0;
    } else {
      second.push(s);
    }
  }
  return [first, second];
}

export class LokiShipper {
  private readonly deps: ShipperDeps;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private encoding: 'protobuf' | 'json';
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private position: SpoolPosition;
  private inflightFirstMs: number | undefined;
  private readonly shippedWaiters = new Set<() => void>();
  private lastError: string | undefined;
  /** Entries whose line is already a stub. */
  private readonly stubs = new WeakSet<object>();

  constructor(deps: ShipperDeps) {
    this.deps = deps;
    const target = pushTarget(deps.config);
    this.url = target.url;
    this.headers = { ...deps.config.headers, ...target.headers };
    this.encoding = deps.config.encoding;
    this.ownsDispatcher = deps.dispatcher === undefined;
    this.dispatcher = deps.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 2 });
    this.position = deps.spool.cursor;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      // run() handles every failure itself; reaching here is a bug, and must still not crash the sidecar.
      this.deps.log.warn({ err: String(err) }, 'audit shipper stopped unexpectedly');
    });
  }

  /** The encoding in use (protobuf falls back to json when the store answers 415). */
  get currentEncoding(): 'protobuf' | 'json' {
    return this.encoding;
  }

  /** Milliseconds since the epoch of the oldest event written but not yet acknowledged, if any. */
  oldestUnshippedMs(): number | undefined {
    return this.inflightFirstMs;
  }

  /** The last push failure, for readiness/diagnostics; cleared by a successful push. */
  get lastFailure(): string | undefined {
    return this.lastError;
  }

  /** Resolves once everything written before `target` is acknowledged (or the shipper stops). */
  async shippedUpTo(target: SpoolPosition, signal?: AbortSignal): Promise<boolean> {
    while (comparePositions(this.position, target) < 0 && this.deps.spool.hasDataAfter(this.position)) {
      if (this.abort.signal.aborted || signal?.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.shippedWaiters.delete(wake);
          signal?.removeEventListener('abort', wake);
          this.abort.signal.removeEventListener('abort', wake);
          resolve();
        };
        this.shippedWaiters.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
        this.abort.signal.addEventListener('abort', wake, { once: true });
      });
    }
    return true;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.ownsDispatcher) await this.dispatcher.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { spool, config } = this.deps;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      await spool.waitForData(this.position, signal);
      if (signal.aborted) break;
      if (config.lingerMs > 0 && spool.unshippedBytes < config.batchMaxBytes) {
        await sleep(config.lingerMs, undefined, { signal }).catch(() => undefined);
      }
      let batch;
      try {
        batch = await spool.read(this.position, config.batchMaxEvents, config.batchMaxBytes);
      } catch (err) {
        this.deps.log.warn({ err: String(err) }, 'audit spool read failed; retrying');
        if (!(await this.pause(config.retryMaxMs))) break;
        continue;
      }
      if (!batch.lines.length) {
        this.position = batch.end;
        continue;
      }
      const { streams, bad, firstTimeMs } = groupLines(batch.lines, batch.tags);
      if (bad.length) {
        // Not an event: it cannot be labelled or timestamped. Verification shows the gap it leaves.
        this.deps.metrics?.eventsDropped.inc({ reason: 'corrupt' }, bad.length);
        this.deps.log.warn({ lines: bad.length }, 'audit spool held unreadable lines; skipped');
      }
      this.inflightFirstMs = firstTimeMs;
      if (streams.length) {
        try {
          await this.omitOverMax(streams);
          await this.shipStreams(streams);
        } catch (err) {
          if (err instanceof Stopped) break;
          throw err;
        }
      }
      try {
        await spool.ack(batch.end, batch.lines.at(-1));
      } catch (err) {
        // The store has the batch; only trimming failed. Keep going from the in-memory position.
        this.deps.log.warn({ err: String(err) }, 'audit spool ack failed');
      }
      this.position = batch.end;
      const events = batch.lines.length - bad.length;
      this.deps.metrics?.eventsShipped.inc(events);
      if (firstTimeMs !== undefined) this.deps.metrics?.shipLatencySeconds.observe(Math.max(0, this.deps.clock() - firstTimeMs) / 1000);
      this.inflightFirstMs = undefined;
      for (const wake of this.shippedWaiters) wake();
      this.deps.onAck?.();
    }
  }

  /** Sleeps `ms` unless stopped; false when stopped. */
  private async pause(ms: number): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.abort.signal });
      return true;
    } catch {
      return false;
    }
  }

  /** Replaces, before the first push, every line longer than maxEntryBytes by its stub. */
  private async omitOverMax(streams: PushStream[]): Promise<void> {
    const max = this.deps.config.maxEntryBytes;
    for (const s of streams) {
      for (const e of s.entries) {
        // A UTF-8 string never has more bytes than 3 per UTF-16 unit: skip the count when it cannot exceed.
        if (e.line.length * 3 <= max) continue;
        const bytes = Buffer.byteLength(e.line);
        if (bytes > max) await this.omit(e, { bytes, reason: 'over_max_entry_bytes' });
      }
    }
  }

  /** Records the omission (retrying until the recorder has it), then swaps the line for its stub. */
  private async omit(entry: { line: string }, o: Pick<Omission, 'bytes' | 'reason' | 'status'>): Promise<boolean> {
    if (this.stubs.has(entry)) return false;
    const stub = omittedStub(entry.line, o);
    if (stub === undefined) return false;
    const ev = JSON.parse(stub) as { seq: number; hash: string };
    const omission: Omission = { seq: ev.seq, hash: ev.hash, ...o };
    for (let attempt = 0; this.deps.recordOmission; attempt++) {
      if (this.abort.signal.aborted) throw new Stopped();
      try {
        await this.deps.recordOmission(omission);
        break;
      } catch (err) {
        this.deps.log.warn({ err: String(err), seq: ev.seq }, 'audit: could not record an omission; retrying');
        const delay = backoffDelayMs(attempt, { initialMs: this.deps.config.retryInitialMs, maxMs: this.deps.config.retryMaxMs }, this.deps.random());
        if (!(await this.pause(delay))) throw new Stopped();
      }
    }
    this.deps.metrics?.eventsDropped.inc({ reason: 'oversized' });
    this.deps.log.warn({ seq: ev.seq, bytes: o.bytes, reason: o.reason, status: o.status }, 'audit: an event is too large for the store; shipped as an omitted stub');
    entry.line = stub;
    this.stubs.add(entry);
    return true;
  }

  /**
   * Pushes streams until accepted; a batch the store keeps refusing is split in halves, each
   * shipped in order (a batch over the store's message or burst limits can never pass whole). A
   * single event refused as too large is replaced by its `omitted` stub.
   */
  private async shipStreams(streams: PushStream[]): Promise<void> {
    const result = await this.pushUntilAccepted(streams);
    if (result === 'accepted') return;
    if (typeof result === 'object') {
      const entry = streams.find((s) => s.entries.length)!.entries[0]!;
      if (!(await this.omit(entry, { bytes: Buffer.byteLength(entry.line), reason: 'store_refused_size', status: result.status }))) {
        // Already a stub (or not an event): there is nothing smaller to send. Back off and retry.
        if (!(await this.pause(this.deps.config.retryMaxMs))) throw new Stopped();
      }
      await this.shipStreams(streams);
      return;
    }
    const [first, second] = splitStreams(streams);
    this.deps.log.warn({ events: countEntries(streams) }, 'audit store keeps refusing a batch; splitting it');
    await this.shipStreams(first);
    await this.shipStreams(second);
  }

  private async pushUntilAccepted(streams: PushStream[]): Promise<'accepted' | 'split' | { oversized: true; status: number }> {
    const { config, metrics, log } = this.deps;
    const events = countEntries(streams);
    let body = encodePush(streams, this.encoding, config.compression);
    for (let attempt = 0; ; ) {
      if (this.abort.signal.aborted) throw new Stopped();
      const t0 = this.deps.clock();
      let outcome: PushOutcome;
      let retryAfterMs: number | undefined;
      let detail: string;
      try {
        const res = await request(this.url, {
          method: 'POST',
          body: body.body,
          headers: { ...this.headers, 'content-type': body.contentType },
          dispatcher: this.dispatcher,
          headersTimeout: config.timeoutMs,
          bodyTimeout: config.timeoutMs,
          signal: this.abort.signal,
        });
        const text = (await res.body.text()).slice(0, 300);
        metrics?.pushSeconds.observe((this.deps.clock() - t0) / 1000);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          metrics?.pushes.inc({ outcome: 'ok' });
          if (this.lastError) log.info({ events }, 'audit store accepting pushes again');
          this.lastError = undefined;
          return 'accepted';
        }
        detail = `HTTP ${res.statusCode}: ${text.trim()}`;
        if (res.statusCode === 415 && this.encoding === 'protobuf') {
          log.warn({ status: 415 }, 'audit store refused protobuf; switching to JSON pushes');
          this.encoding = 'json';
          body = encodePush(streams, this.encoding, config.compression);
          metrics?.pushes.inc({ outcome: 'rejected' });
          continue;
        }
        outcome = res.statusCode === 429 || res.statusCode >= 500 ? 'retry_status' : 'rejected';
        retryAfterMs = parseRetryAfterMs(res.headers['retry-after'], this.deps.clock());
        const tooLarge = isSizeRefusal(res.statusCode, text);
        // One event the store refuses as too large can never pass: retrying it forever would
        // stall every later event behind it.
        if (events === 1 && tooLarge) {
          metrics?.pushes.inc({ outcome });
          this.lastError = detail;
          return { oversized: true, status: res.statusCode };
        }
        // An answer (not a network failure) refusing a multi-event batch again and again may be
        // about its size (413, Loki's 4 MB internal gRPC limit as a 500, a 429 over the burst).
        if (events > 1 && (tooLarge || attempt + 1 >= SPLIT_AFTER_REFUSALS)) {
          metrics?.pushes.inc({ outcome });
          metrics?.eventsRetried.inc(events);
          this.lastError = detail;
          return 'split';
        }
      } catch (err) {
        if (this.abort.signal.aborted) throw new Stopped();
        outcome = 'retry_network';
        detail = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : String(err);
      }
      metrics?.pushes.inc({ outcome });
      metrics?.eventsRetried.inc(events);
      // A 4xx other than 429 usually needs an operator (auth, limits); it is retried all the same,
      // because skipping the batch would lose events. The spool's bound turns a lasting refusal
      // into fail-closed (or counted drops).
      if (detail !== this.lastError) log.warn({ outcome, detail, events }, 'audit push failed; will retry');
      this.lastError = detail;
      const delay = backoffDelayMs(attempt++, { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs }, this.deps.random(), retryAfterMs);
      if (!(await this.pause(delay))) throw new Stopped();
    }
  }
}
