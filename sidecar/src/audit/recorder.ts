// The audit recorder the proxy calls: `record()` links an event into the session's hash chain and
// resolves once it is durable in the spool (per the fsync policy); a shipper streams the spool to
// the store (Loki or VictoriaLogs) behind it. With `store: none` the spool is a bounded ring: the
// oldest events are trimmed when it is full instead of refusing traffic, warned loudly. Every
// change of the spool's state (ok, behind, near full, full) is logged. Group commit: concurrent
// records share one durable write, and with fsync `always` a record resolves only after the
// write holding its line has completed on disk (the spool's O_DSYNC write of the group); a failed
// write or sync rejects every record of its group (audit.spool_io: fail closed), is counted and
// logged, and the next group is written as usual. The chain head only moves after a successful
// write, so a failed write leaves no gap and a restart resumes from the spool's last event. It
// must never resolve a record that is not written (with fsync always: not synced), and never throw
// anything but an AuditError at the proxy.
import { randomUUID } from 'node:crypto';
import { GENESIS_HASH } from '../../../api/src/index.ts';
import type { AuditEvent, AuditRecord } from '../../../api/src/index.ts';
import { chainEventLine, genesisHead, hashEvent } from '../../../lib/src/audit/chain.ts';
import { checkRecord } from '../../../lib/src/audit/record-shape.ts';
import type { ChainHead, ChainedEvent } from '../../../lib/src/audit/chain.ts';
import { parseAuditConfig, resolveStore } from './config.ts';
import type { AuditConfig, AuditConfigInput, AuditStore } from './config.ts';
import { AuditError, spoolIoError } from '../../../lib/src/audit/errors.ts';
import type { AuditMetrics } from './metrics.ts';
import { LokiShipper, silentLogger } from './shipper.ts';
import type { AuditLogger } from './shipper.ts';
import { Spool } from './spool.ts';
import type { SpoolOptions } from './spool.ts';
import { entryTag } from './loki-push.ts';
import type { EntryTag, Omission, StreamLabels } from './loki-push.ts';
import { isWorse, spoolState } from './spool-state.ts';
import type { SpoolState } from './spool-state.ts';
import type { Dispatcher } from 'undici';

export interface AuditRecorderDeps {
  metrics?: AuditMetrics;
  log?: AuditLogger;
  /** Wall clock in ms (tests inject a fixed one). */
  clock?: () => number;
  /** Event ids. */
  newId?: () => string;
  /** Session id when neither config nor the spool provides one. */
  newSessionId?: () => string;
  /** Uniform [0,1) for retry jitter. */
  random?: () => number;
  /** undici dispatcher for the pushes (default: the shipper's own keep-alive Agent). */
  dispatcher?: Dispatcher;
  /** How often the spool's state is re-evaluated between writes and acknowledgements (default 5000 ms). */
  stateCheckMs?: number;
  /** The spool's segment sync outside a write (default fdatasync): sealing, closing, fsync interval. */
  datasync?: SpoolOptions['datasync'];
  /**
   * The spool's segment write (default: a positional write; with fsync always on an O_DSYNC handle,
   * so it is the group's sync). Tests and the benchmark wrap the real one to hold, count or fail it.
   */
  write?: SpoolOptions['write'];
}

export interface AuditStopOptions {
  /** How long stop() waits for the store to acknowledge what is spooled. Default 5000 ms. */
  drainTimeoutMs?: number;
}

/** How the recorder found its spool at start(). */
export interface AuditStartInfo {
  session: string;
  /** The session continues a chain found in the spool (a restart of the same pod). */
  resumed: boolean;
  /** Seq of the session_start event written by this start. */
  seq: number;
  /** Bytes of an unacknowledged torn write cut from the spool. */
  truncatedBytes: number;
  /** Where events go: `none` keeps a bounded local ring and ships nothing. */
  store: 'none' | 'loki' | 'victorialogs';
}

interface Pending {
  rec: AuditRecord;
  atMs: number;
  /** The recorder's own events (session_start/_end): never dropped, never refused for state. */
  internal: boolean;
  resolve(ev: AuditEvent | undefined): void;
  reject(err: AuditError): void;
}

interface DropTally {
  count: number;
  spool_full: number;
  spool_io: number;
  firstMs: number;
  lastMs: number;
}

function noDrops(): DropTally {
  return { count: 0, spool_full: 0, spool_io: 0, firstMs: 0, lastMs: 0 };
}

/**
 * Records chained into one append. While one group is being written and synced, the next one is
 * built as records arrive (chaining is synchronous in record()), so the CPU work overlaps the disk
 * wait and a group holds everything that arrived during the previous sync.
 */
interface Group {
  lines: string[];
  lineBytes: number[];
  tags: EntryTag[];
  accepted: { p: Pending; event: AuditEvent }[];
  bytes: number;
  /** The chain head after the group's last event (tentative until the write succeeds). */
  head: ChainHead;
  /** The drop tally its `dropped` event reports, if it has one. */
  reported: DropTally | undefined;
  /** A record was refused as not fitting: later ones in this group are refused too (order). */
  full: AuditError | undefined;
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The write time of a spooled line (its `time`), for the spool's own oldest-unshipped age. */
function lineTimeMs(line: string): number | undefined {
  try {
    const t = (JSON.parse(line) as { time?: unknown }).time;
    return typeof t === 'string' ? Date.parse(t) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the chain head from a spooled line, or undefined when the line is not an intact event. */
export function headFromLine(line: string): ChainHead | undefined {
  try {
    const ev = JSON.parse(line) as AuditEvent;
    if (typeof ev.session !== 'string' || typeof ev.seq !== 'number' || typeof ev.time !== 'string') return undefined;
    if (hashEvent(ev) !== ev.hash) return undefined;
    return { session: ev.session, seq: ev.seq, hash: ev.hash, time: ev.time };
  } catch {
    return undefined;
  }
}

/**
 * Whether a spooled event line follows `prev` in the chain: the next seq of the same session with
 * its hash as prev_hash, or the first event of a new session. Recovery keeps a tail line only if
 * this holds, so a write that reached the disk without the one before it is not resumed from.
 */
export function linksAfter(prev: string, line: string): boolean {
  const before = headFromLine(prev);
  if (!before) return false;
  try {
    const ev = JSON.parse(line) as AuditEvent;
    if (ev.session === before.session) return ev.seq === before.seq + 1 && ev.prev_hash === before.hash;
    return ev.seq === 0 && ev.prev_hash === GENESIS_HASH;
  } catch {
    return false;
  }
}

export class AuditRecorder {
  readonly config: AuditConfig;
  private readonly metrics: AuditMetrics | undefined;
  private readonly log: AuditLogger;
  private readonly clock: () => number;
  private readonly newId: () => string;
  private readonly newSessionId: () => string;
  private readonly random: () => number;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly stateCheckMs: number;
  private readonly datasync: SpoolOptions['datasync'];
  private readonly segmentWrite: SpoolOptions['write'];
  /** The resolved store; `none` is a ring. */
  private readonly store: AuditStore;
  /** `store` was written in the config (or the legacy `loki`), not defaulted. */
  private readonly storeExplicit: boolean;
  private state: State = 'new';
  private spool: Spool<EntryTag> | undefined;
  /** The stream labels of the current session, shared by every tag. */
  private labels: StreamLabels | undefined;
  private shipper: LokiShipper | undefined;
  private head: ChainHead | undefined;
  /** The group new records are chained into; written once the write before it is done. */
  private building: Group | undefined;
  /** The group being written (and synced) right now. */
  private writing: Group | undefined;
  private flushing: Promise<void> | undefined;
  private flushActive = false;
  /** Drops not yet reported by a `dropped` event. */
  private dropped: DropTally = noDrops();
  /** Spool bytes when a record was last refused or dropped for room; cleared by the next write. */
  private fullAtBytes: number | undefined;
  /** The ring (store none) has trimmed events: it is full and stays so. */
  private ringWrapped = false;
  private spoolHealth: SpoolState = 'ok';
  private stateTimer: NodeJS.Timeout | undefined;

  /** Validates the config (throws SchemaError naming the field); does no I/O. */
  constructor(config: AuditConfigInput | AuditConfig, deps: AuditRecorderDeps = {}) {
    this.config = parseAuditConfig(config);
    this.metrics = deps.metrics;
    this.log = deps.log ?? silentLogger;
    this.clock = deps.clock ?? Date.now;
    this.newId = deps.newId ?? randomUUID;
    this.newSessionId = deps.newSessionId ?? randomUUID;
    this.random = deps.random ?? Math.random;
    this.dispatcher = deps.dispatcher;
    this.stateCheckMs = deps.stateCheckMs ?? 5000;
    this.datasync = deps.datasync;
    this.segmentWrite = deps.write;
    const store = resolveStore(this.config);
    this.storeExplicit = store !== undefined;
    this.store = store ?? 'none';
  }

  /** What the spool's state is now (ok, behind, near_full, full); logged on every change. */
  get spoolState(): SpoolState {
    return this.spoolHealth;
  }

  private get ring(): boolean {
    return this.store === 'none';
  }

  private get storeType(): 'none' | 'loki' | 'victorialogs' {
    return this.store === 'none' ? 'none' : this.store.type;
  }

  /** The session id (one per pod start; a sidecar restart in the same pod resumes it). */
  get session(): string {
    if (!this.head) throw new AuditError('audit.not_running', 'the recorder has not started');
    return this.head.session;
  }

  /** Segment syncs the spool has completed (with fsync always: one per group commit). */
  get syncs(): number {
    return this.spool?.syncs ?? 0;
  }

  /** The last event durable in the spool: what `verify --head-seq/--head-hash` can be held to. */
  get lastDurable(): { seq: number; hash: string } | undefined {
    return this.head && this.head.seq >= 0 ? { seq: this.head.seq, hash: this.head.hash } : undefined;
  }

  /**
   * Opens the spool (recovering after any kind of stop), picks the session, writes a
   * session_start event and starts shipping. Throws AuditError (audit.spool_io) when the spool
   * directory is unusable.
   */
  async start(): Promise<AuditStartInfo> {
    if (this.state !== 'new') throw new AuditError('audit.not_running', `start() called in state ${this.state}`);
    this.state = 'starting';
    let opened;
    try {
      opened = await Spool.open<EntryTag>(this.config.spoolDir, {
        segmentBytes: this.config.spool.segmentBytes,
        fsync: this.config.spool.fsync,
        fsyncIntervalMs: this.config.spool.fsyncIntervalMs,
        isValidTail: (line) => headFromLine(line) !== undefined,
        isValidSuccessor: linksAfter,
        lineTimeMs,
        ...(this.datasync ? { datasync: this.datasync } : {}),
        ...(this.segmentWrite ? { write: this.segmentWrite } : {}),
      });
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    const { spool, recovery } = opened;
    this.spool = spool;
    const found = recovery.lastLine === undefined ? undefined : headFromLine(recovery.lastLine);
    const wanted = this.config.session;
    const resumed = found !== undefined && (wanted === undefined || wanted === found.session);
    this.head = resumed ? found : genesisHead(wanted ?? this.newSessionId());
    if (recovery.truncatedBytes) this.log.warn({ bytes: recovery.truncatedBytes }, 'audit spool: cut an unacknowledged torn write');
    this.metrics?.track({
      spoolBytes: () => this.spool?.bytes ?? 0,
      unshippedBytes: () => this.spool?.unshippedBytes ?? 0,
      capacityBytes: () => this.config.spool.maxBytes,
      oldestUnshippedAgeSeconds: () => this.oldestUnshippedAgeSeconds(),
      store: () => this.storeType,
      state: () => this.checkState(),
    });
    if (this.store === 'none') {
      // Loud on purpose: a release without a log store keeps only the newest maxBytes of events,
      // on the pod's own disk, lost with the pod.
      this.log.warn(
        { store: 'none', explicit: this.storeExplicit, ringBytes: this.config.spool.maxBytes, spoolDir: this.config.spoolDir },
        this.storeExplicit
          ? 'AUDIT EVENTS ARE NOT SHIPPED: audit.store is none; the spool is a bounded local ring and its oldest events are trimmed when it is full (set audit.store to {type: loki|victorialogs, url} to keep them)'
          : 'AUDIT EVENTS ARE NOT SHIPPED: audit.store is not set, so it is none; the spool is a bounded local ring and its oldest events are trimmed when it is full (set audit.store to none to say so, or to {type: loki|victorialogs, url} to keep them)',
      );
    } else {
      this.shipper = new LokiShipper({
        spool,
        config: this.store,
        metrics: this.metrics,
        clock: this.clock,
        random: this.random,
        log: this.log,
        dispatcher: this.dispatcher,
        recordOmission: (o) => this.recordOmission(o),
        onAck: () => this.checkState(),
      });
      this.shipper.start();
    }
    this.stateTimer = setInterval(() => this.checkState(), this.stateCheckMs);
    this.stateTimer.unref();
    const detail: Record<string, unknown> = { resumed };
    if (found && !resumed) detail.previous_session = found.session;
    if (recovery.truncatedBytes) detail.truncated_bytes = recovery.truncatedBytes;
    let start: AuditEvent | undefined;
    try {
      start = await this.enqueue(this.internalRecord('session_start', detail), true);
    } catch (err) {
      // A full disk must not keep the sidecar from starting: the shipper is what frees it, and
      // records fail closed meanwhile. Only a record that cannot be written at all stops here.
      if (!(err instanceof AuditError && err.retryable)) {
        clearInterval(this.stateTimer);
        this.stateTimer = undefined;
        await this.shipper?.stop();
        await spool.close().catch(() => undefined);
        this.state = 'stopped';
        throw err;
      }
      this.log.warn({ code: err.code, errno: err.errno }, 'audit: could not write session_start; starting anyway');
    }
    this.state = 'running';
    this.checkState();
    return { session: this.head.session, resumed, seq: start?.seq ?? this.head.seq, truncatedBytes: recovery.truncatedBytes, store: this.storeType };
  }

  /**
   * Chains the record and resolves with the event once it is durable in the spool (fsync
   * `always`: on disk). Rejects with AuditError: `audit.spool_full` / `audit.spool_io` (fail
   * closed: answer the agent 503), `audit.not_running`, `audit.bad_record` (a bug in the caller).
   * With onFull `drop`, a full spool or a failed write resolves `undefined` and is counted.
   */
  record(rec: AuditRecord): Promise<AuditEvent | undefined> {
    if (this.state !== 'running') {
      this.metrics?.appendErrors.inc({ code: 'audit.not_running' });
      return Promise.reject(new AuditError('audit.not_running', `audit recorder is ${this.state}`));
    }
    return this.enqueue(rec, false);
  }

  /**
   * Resolves true once every event recorded before the call is acknowledged by the store, false
   * when the signal aborts first or there is no store configured.
   */
  async whenShipped(signal?: AbortSignal): Promise<boolean> {
    await this.flushing;
    if (!this.shipper || !this.spool) return false;
    return this.shipper.shippedUpTo(this.spool.end, signal);
  }

  /**
   * Stops taking records, writes session_end, waits up to drainTimeoutMs for the store to take
   * what is spooled, then closes. What is not shipped stays in the spool for the next start.
   * Resolves whether everything was shipped.
   */
  async stop(opts: AuditStopOptions = {}): Promise<{ shipped: boolean }> {
    if (this.state === 'stopped' || this.state === 'stopping' || this.state === 'new') {
      this.state = 'stopped';
      return { shipped: false };
    }
    this.state = 'stopping';
    if (this.stateTimer) clearInterval(this.stateTimer);
    this.stateTimer = undefined;
    await this.flushing;
    try {
      await this.enqueue(this.internalRecord('session_end', {}), true);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'audit: could not write session_end');
    }
    let shipped = false;
    if (this.shipper) {
      shipped = await this.whenShipped(AbortSignal.timeout(opts.drainTimeoutMs ?? 5000));
      await this.shipper.stop();
    }
    try {
      await this.spool?.close();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'audit: spool close failed');
    }
    this.state = 'stopped';
    return { shipped };
  }

  /** Measured by the spool itself, shipper or not: with store none it is the age of the ring. */
  private oldestUnshippedAgeSeconds(): number {
    const first = this.spool?.oldestUnshippedMs;
    return first === undefined ? 0 : Math.max(0, this.clock() - first) / 1000;
  }

  /** Re-evaluates the spool's state and logs a change; returns the state. */
  private checkState(): SpoolState {
    const spool = this.spool;
    if (!spool) return this.spoolHealth;
    const bytes = spool.bytes;
    if (this.fullAtBytes !== undefined && bytes < this.fullAtBytes) this.fullAtBytes = undefined;
    const measures = {
      bytes,
      capacityBytes: this.config.spool.maxBytes,
      oldestUnshippedAgeSeconds: this.oldestUnshippedAgeSeconds(),
      shipping: !this.ring,
      full: this.ring ? this.ringWrapped : this.fullAtBytes !== undefined,
    };
    const next = spoolState(measures);
    const prev = this.spoolHealth;
    if (next === prev) return next;
    this.spoolHealth = next;
    const fields = {
      from: prev,
      to: next,
      store: this.storeType,
      spoolBytes: bytes,
      capacityBytes: measures.capacityBytes,
      unshippedBytes: spool.unshippedBytes,
      oldestUnshippedAgeSeconds: Math.round(measures.oldestUnshippedAgeSeconds),
      ...(this.shipper?.lastFailure ? { lastPushFailure: this.shipper.lastFailure } : {}),
    };
    const what =
      next === 'full'
        ? this.ring
          ? 'the ring is full: its oldest events are now trimmed, never shipped'
          : this.config.spool.onFull === 'drop'
            ? 'full: events are dropped'
            : 'full: records are refused and agent requests answered 503'
        : next === 'near_full'
          ? 'near full'
          : next === 'behind'
            ? 'behind: the store has not acknowledged events for a minute'
            : 'ok';
    const msg = `audit spool ${prev} → ${next}: ${what}`;
    if (isWorse(prev, next)) this.log.warn(fields, msg);
    else this.log.info(fields, msg);
    return next;
  }

  /** A chained `dropped` event saying which event the store gets only as a stub, and why. */
  private async recordOmission(o: Omission): Promise<void> {
    const entry = { seq: o.seq, hash: o.hash, bytes: o.bytes, ...(o.status === undefined ? {} : { status: o.status }) };
    await this.enqueue(this.internalRecord('dropped', { reason: o.reason, omitted: [entry] }), true);
  }

  private internalRecord(kind: 'session_start' | 'session_end' | 'dropped', detail: Record<string, unknown>): AuditRecord {
    return { kind, pod: { ...this.config.pod }, ...(this.config.creator ? { creator: this.config.creator } : {}), detail };
  }

  private enqueue(rec: AuditRecord, internal: boolean): Promise<AuditEvent | undefined> {
    return new Promise((resolve, reject) => {
      this.add({ rec, atMs: this.clock(), internal, resolve, reject });
      if (!this.flushActive && this.building) {
        this.flushActive = true;
        this.flushing = this.flushLoop();
      }
    });
  }

  private chain(head: ChainHead, rec: AuditRecord, atMs: number): ChainedEvent {
    // The record is checked, not the event: the chain fields are made here, correct by construction.
    // The hand-written check answers for the records the proxy builds; whatever it is not sure of
    // goes to the schema, which decides and words the refusal (record-shape.ts).
    checkRecord(rec);
    try {
      return chainEventLine(head, rec, { id: this.newId(), now: atMs });
    } catch (err) {
      if (err instanceof AuditError) throw err;
      throw new AuditError('audit.bad_record', String(err));
    }
  }

  /** Refuses a record that could not be written: a counted drop, or an error for the caller. */
  private refuse(p: Pending, err: AuditError): void {
    if (!p.internal && this.config.spool.onFull === 'drop' && (err.code === 'audit.spool_full' || err.code === 'audit.spool_io')) {
      const reason = err.code === 'audit.spool_full' ? 'spool_full' : 'spool_io';
      if (this.dropped.count === 0) this.dropped.firstMs = p.atMs;
      this.dropped.count++;
      this.dropped[reason]++;
      this.dropped.lastMs = p.atMs;
      this.metrics?.eventsDropped.inc({ reason });
      p.resolve(undefined);
      return;
    }
    this.metrics?.appendErrors.inc({ code: err.code });
    p.reject(err);
  }

  private droppedRecord(d: DropTally): AuditRecord {
    return this.internalRecord('dropped', {
      count: d.count,
      spool_full: d.spool_full,
      spool_io: d.spool_io,
      first: new Date(d.firstMs).toISOString(),
      last: new Date(d.lastMs).toISOString(),
    });
  }

  /** Puts a tally whose `dropped` event was not written back in front of newer drops. */
  private unreport(d: DropTally): void {
    const now = this.dropped;
    this.dropped = {
      count: d.count + now.count,
      spool_full: d.spool_full + now.spool_full,
      spool_io: d.spool_io + now.spool_io,
      firstMs: d.firstMs,
      lastMs: now.count ? now.lastMs : d.lastMs,
    };
  }

  /** Chains a record into the group being built, or settles it at once when it cannot be written. */
  private add(p: Pending): void {
    const spool = this.spool!;
    const maxBytes = this.config.spool.maxBytes;
    const g = (this.building ??= {
      lines: [],
      lineBytes: [],
      tags: [],
      accepted: [],
      bytes: 0,
      head: this.writing?.head ?? this.head!,
      reported: undefined,
      full: undefined,
    });
    if (g.full && !p.internal) {
      this.refuse(p, g.full);
      return;
    }
    // A ring (store none) always has room: write() trims its oldest events first.
    const fits = (len: number): boolean => this.ring || spool.bytes + (this.writing?.bytes ?? 0) + g.bytes + len <= maxBytes;
    // After drops, the next event written is preceded by a `dropped` event saying how many and when.
    if (this.dropped.count > 0 && !p.internal) {
      const tally = this.dropped;
      const marker = this.chain(g.head, this.droppedRecord(tally), p.atMs);
      const len = Buffer.byteLength(marker.line) + 1;
      if (fits(len)) {
        g.reported = mergeTallies(g.reported, tally);
        this.dropped = noDrops();
        this.take(g, marker, len);
      }
    }
    let chained: ChainedEvent;
    try {
      chained = this.chain(g.head, p.rec, p.atMs);
    } catch (err) {
      this.refuse(p, err instanceof AuditError ? err : new AuditError('audit.bad_record', String(err)));
      return;
    }
    const len = Buffer.byteLength(chained.line) + 1;
    // The recorder's own few events (session_start/_end) may pass the bound: a restart with a
    // full spool must still start, so its shipper can drain it.
    if (!p.internal && !fits(len)) {
      g.full = new AuditError('audit.spool_full', `audit spool holds ${spool.bytes} of its ${maxBytes} bytes (${spool.unshippedBytes} not yet shipped)`);
      this.fullAtBytes = spool.bytes;
      this.refuse(p, g.full);
      this.checkState();
      return;
    }
    this.take(g, chained, len);
    g.accepted.push({ p, event: chained.event });
  }

  private take(g: Group, c: ChainedEvent, len: number): void {
    g.lines.push(c.line);
    g.lineBytes.push(len - 1);
    const tag = entryTag(c.event, this.labels);
    this.labels = tag.labels;
    g.tags.push(tag);
    g.bytes += len;
    g.head = c.event;
  }

  /**
   * Writes groups one after another until none is waiting. It starts a tick late, so records
   * made in the same tick share the first write, and clears flushActive in the same synchronous
   * step that finds nothing left, so a record from a just-resolved caller starts a new loop.
   */
  private async flushLoop(): Promise<void> {
    await Promise.resolve();
    for (;;) {
      const g = this.building;
      if (!g) {
        this.flushActive = false;
        return;
      }
      this.building = undefined;
      if (!g.accepted.length) {
        if (g.reported) this.unreport(g.reported);
        continue;
      }
      this.writing = g;
      const err = await this.write(g);
      this.writing = undefined;
      if (err) {
        this.fail(g, err);
        // The group built meanwhile was chained after the failed one: chain it again from the
        // durable head, so the failure leaves no gap.
        const next = this.building as Group | undefined;
        if (next) {
          this.building = undefined;
          if (next.reported) this.unreport(next.reported);
          for (const a of next.accepted) this.add(a.p);
        }
      } else {
        this.commit(g);
      }
    }
  }

  private async write(g: Group): Promise<AuditError | undefined> {
    try {
      if (this.ring) {
        const data = g.bytes;
        const trimmed = await this.spool!.makeRoom(data, this.config.spool.maxBytes);
        if (trimmed.lines > 0) {
          this.ringWrapped = true;
          this.metrics?.eventsTrimmed.inc(trimmed.lines);
        }
      }
      await this.spool!.append(Buffer.from(`${g.lines.join('\n')}\n`, 'utf8'), { lines: g.lines, lineBytes: g.lineBytes, tags: g.tags });
      return undefined;
    } catch (err) {
      return err instanceof AuditError ? err : spoolIoError('cannot write audit spool', err);
    }
  }

  private commit(g: Group): void {
    this.head = g.head;
    if (g.accepted.some((a) => !a.p.internal)) this.fullAtBytes = undefined;
    const now = this.clock();
    this.metrics?.eventsWritten.inc(g.lines.length);
    for (const a of g.accepted) {
      this.metrics?.appendSeconds.observe(Math.max(0, now - a.p.atMs) / 1000);
      a.p.resolve(a.event);
    }
    this.checkState();
  }

  private fail(g: Group, err: AuditError): void {
    this.log.warn({ code: err.code, errno: err.errno, events: g.accepted.length }, 'audit spool write failed');
    if (g.reported) this.unreport(g.reported);
    for (const a of g.accepted) this.refuse(a.p, err);
  }
}

function mergeTallies(a: DropTally | undefined, b: DropTally): DropTally {
  if (!a) return b;
  return { count: a.count + b.count, spool_full: a.spool_full + b.spool_full, spool_io: a.spool_io + b.spool_io, firstMs: a.firstMs, lastMs: b.lastMs };
}
