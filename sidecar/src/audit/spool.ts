// The audit write-ahead spool: a directory of append-only NDJSON segment files plus a cursor that
// says how far the store has acknowledged. append() returns once the bytes are written and, per
// the fsync policy, synced; read() hands written lines to the shipper; ack() moves the cursor and
// deletes segments that are wholly shipped. It knows nothing about events: a line is opaque
// except to the `isValidTail` check used at recovery. It must never throw anything but an
// AuditError out of a file-system failure, and never leave a partial line before a later write.
//
// With fsync `always` a segment is written the way a database writes its log: opened O_DSYNC, so
// each append is one positional write that returns only once its bytes are on disk (one trip to
// the thread pool instead of a write and an fdatasync), into a region of the file that was
// zero-filled and made durable ahead of it, so the append changes no metadata and the flush
// carries no journal commit. The zeros past the data are an unfinished tail to recovery (cut like
// a torn write), and are cut when a segment is sealed or the spool closed: a segment at rest holds
// exactly its lines.
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditError, spoolIoError } from '../../../lib/src/audit/errors.ts';
import type { SpoolConfig } from './config.ts';
import { completeLines } from '../../../lib/src/audit/spool-format.ts';

export interface SpoolPosition {
  segment: number;
  offset: number;
}

export interface SpoolBatch<Tag = never> {
  lines: string[];
  /** Per line, what the writer attached when the line was served from memory (see HotLines). */
  tags: (Tag | undefined)[] | undefined;
  bytes: number;
  /** Position just after the last line of the batch: what to ack once the store has it. */
  end: SpoolPosition;
}

export interface SpoolRecovery {
  /** The last complete, valid line of the spool (the chain head), if any. */
  lastLine: string | undefined;
  /**
   * Bytes cut from the end of the newest segment: a torn or invalid tail of an unacknowledged write
   * (the zero-fill ahead of the data with fsync always is cut too, but not counted).
   */
  truncatedBytes: number;
}

/**
 * The lines of an append as the writer knows them, with a tag each (what the shipper needs to
 * know about a line). Kept in memory until shipped so a reader keeping up never re-reads the disk
 * or re-parses a line; bounded, past the bound readers fall back to the files.
 */
export interface HotLines<Tag> {
  lines: string[];
  /** Byte length of each line, without its newline. */
  lineBytes: number[];
  tags: Tag[];
}

interface RecentAppend<Tag> {
  segment: number;
  start: number;
  end: number;
  lines: string[];
  /** Offset of each line's first byte. */
  starts: number[];
  tags: Tag[];
}

/** Bytes of recent appends kept in memory for the reader. */
const RECENT_MAX_BYTES = 8 * 1024 * 1024;

export type SpoolOptions = Pick<SpoolConfig, 'segmentBytes' | 'fsync' | 'fsyncIntervalMs'> & {
  /** Recovery keeps the tail of the newest segment only up to the last line this accepts. */
  isValidTail?: (line: string) => boolean;
  /**
   * Whether `line` may follow `prev` (the line before it in the segment): recovery keeps a tail
   * line only if it also links to its predecessor (a hash chain's prev-hash), so a line that
   * reached the disk without the one before it is cut with it.
   */
  isValidSuccessor?: (prev: string, line: string) => boolean;
  /**
   * The write time (ms since the epoch) of a line, for `oldestUnshippedMs`: the spool measures
   * how far behind it is itself, whether or not anything ships from it.
   */
  lineTimeMs?: (line: string) => number | undefined;
  /**
   * How a segment's written bytes are made durable outside a write: interval syncs, sealing,
   * closing (default: the handle's fdatasync). Tests wrap the real one.
   */
  datasync?: (fh: FileHandle) => Promise<void>;
  /**
   * How an append's bytes reach the segment: a positional write of `length` bytes of `data` from
   * `offset`, at `position`, resolving with the bytes written (default: the handle's write). With
   * fsync `always` the handle is O_DSYNC, so when this resolves the bytes are on disk: it is the
   * group commit's sync. Tests and the benchmark wrap the real one to hold, count or fail it.
   */
  write?: (fh: FileHandle, data: Buffer, offset: number, length: number, position: number) => Promise<number>;
};

/** What making room in a ring trimmed: lines that were never acknowledged by a store. */
export interface TrimResult {
  lines: number;
  bytes: number;
}

const SEGMENT_RE = /^seg-(\d{20})\.ndjson$/;
/**
 * How far ahead of its data (at most to `segmentBytes`) the active segment is zero-filled with fsync
 * `always`. One durable write of this many zeros (a few ms, with a journal commit) buys about 1500
 * audit-sized appends that change no metadata. It is also how far the spool's files may exceed
 * `bytes` on disk while it is open.
 */
export const ZERO_AHEAD_BYTES = 1024 * 1024;
const CURSOR_FILE = 'cursor.json';
const NEWLINE = 0x0a;

export function comparePositions(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment - b.segment || a.offset - b.offset;
}

function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function segmentFileName(n: number): string {
  return `seg-${String(n).padStart(20, '0')}.ndjson`;
}

interface CursorFile extends SpoolPosition {
  /** The last line acknowledged, so the chain head survives even when no segment holds it. */
  last?: string;
}

function parseCursor(text: string): CursorFile | undefined {
  try {
    const c = JSON.parse(text) as { segment?: unknown; offset?: unknown; last?: unknown };
    if (Number.isSafeInteger(c.segment) && Number.isSafeInteger(c.offset) && (c.offset as number) >= 0) {
      return { segment: c.segment as number, offset: c.offset as number, ...(typeof c.last === 'string' ? { last: c.last } : {}) };
    }
  } catch {
    // An unreadable cursor costs only re-shipping: the store folds exact duplicates.
  }
  return undefined;
}

export class Spool<Tag = never> {
  readonly dir: string;
  private readonly opts: SpoolOptions;
  /** Segment number → size in bytes written (the active one is the highest). */
  private readonly sizes = new Map<number, number>();
  private active = 0;
  private fh: FileHandle | undefined;
  /** The file may hold bytes past sizes[active] from a failed write; cut them before the next. */
  private dirtyTail = false;
  private unsynced = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncError: AuditError | undefined;
  private cursorPos: SpoolPosition = { segment: 0, offset: 0 };
  private lastAcked: string | undefined;
  private readonly waiters = new Set<() => void>();
  private readFh: { segment: number; fh: FileHandle } | undefined;
  private totalBytes = 0;
  private closed = false;
  private recent: RecentAppend<Tag>[] = [];
  private recentBytes = 0;
  private oldestMs: number | undefined;
  private syncCount = 0;
  /** With fsync always: the active segment's file is zero-filled (durably) up to here, past its data. */
  private zeroedTo = 0;

  private constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.opts = opts;
  }

  /** Opens (creating) the spool directory and recovers its state after any kind of stop. */
  static async open<T = never>(dir: string, opts: SpoolOptions): Promise<{ spool: Spool<T>; recovery: SpoolRecovery }> {
    const spool = new Spool<T>(dir, opts);
    const recovery = await spool.recover();
    return { spool, recovery };
  }

  private async recover(): Promise<SpoolRecovery> {
    try {
      await mkdir(this.dir, { recursive: true });
      const names = await readdir(this.dir);
      const segments = names
        .map((n) => SEGMENT_RE.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => a - b);
      let cursor: CursorFile | undefined;
      try {
        cursor = parseCursor(await readFile(join(this.dir, CURSOR_FILE), 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // Segments wholly before the cursor were shipped; a crash between cursor write and unlink left them.
      for (const n of segments) {
        if (cursor && n < cursor.segment) await unlink(join(this.dir, segmentFileName(n)));
        else this.sizes.set(n, (await stat(join(this.dir, segmentFileName(n)))).size);
      }
      let lastLine: string | undefined;
      let truncatedBytes = 0;
      const kept = [...this.sizes.keys()];
      // A sealed segment was synced before the next one existed, so it holds whole lines, but one
      // sealed by an older release after a partial zero-fill may still end in zeros: cut them, or
      // the reader would wait at them forever. Only those ending in a zero byte are read.
      for (const n of kept.slice(0, -1)) this.sizes.set(n, await cutAtFirstNul(join(this.dir, segmentFileName(n)), this.sizes.get(n) ?? 0));
      // Only the newest segment can end in an unacknowledged, torn or garbage write: cut it back to
      // its last valid line. The head of the chain is the last valid line, maybe in an older segment.
      for (let i = kept.length - 1; i >= 0 && lastLine === undefined; i--) {
        const n = kept[i]!;
        const path = join(this.dir, segmentFileName(n));
        const buf = await readFile(path);
        const { keep, line, written } = validPrefix(buf, this.opts.isValidTail, this.opts.isValidSuccessor);
        lastLine = line;
        if (i === kept.length - 1 && keep < buf.length) {
          const fh = await open(path, 'r+');
          try {
            await fh.truncate(keep);
            await fh.sync();
          } finally {
            await fh.close();
          }
          truncatedBytes += Math.max(0, written - keep);
          this.sizes.set(n, keep);
        }
      }
      if (lastLine === undefined && cursor?.last !== undefined && (this.opts.isValidTail?.(cursor.last) ?? true)) lastLine = cursor.last;
      this.lastAcked = cursor?.last;
      const newest = kept.at(-1);
      this.active = newest ?? (cursor ? cursor.segment : 1);
      if (newest === undefined) this.sizes.set(this.active, 0);
      const segs = [...this.sizes.keys()].sort((a, b) => a - b);
      if (!cursor) cursor = { segment: segs[0]!, offset: 0 };
      else if (!this.sizes.has(cursor.segment)) {
        const after = cursor.segment;
        cursor = { segment: segs.find((n) => n > after) ?? this.active, offset: 0 };
      }
      this.cursorPos = { segment: cursor.segment, offset: Math.min(cursor.offset, this.sizes.get(cursor.segment) ?? 0) };
      this.fh = await this.openSegment(this.active, false);
      this.zeroedTo = this.sizes.get(this.active) ?? 0;
      if (newest === undefined) await this.syncDir();
      this.recount();
      await this.refreshOldest();
      return { lastLine, truncatedBytes };
    } catch (err) {
      if (err instanceof AuditError) throw err;
      throw spoolIoError(`cannot recover spool ${this.dir}`, err);
    }
  }

  private recount(): void {
    let total = 0;
    for (const size of this.sizes.values()) total += size;
    this.totalBytes = total;
  }

  /** Bytes the spool's segment files hold (shipped or not, until trimmed). */
  get bytes(): number {
    return this.totalBytes;
  }

  get cursor(): SpoolPosition {
    return { ...this.cursorPos };
  }

  /**
   * Write time of the oldest line the store has not acknowledged (undefined when there is none),
   * kept by the spool itself: set by the append that ends an empty stretch, re-read at the cursor
   * whenever it moves (ack, trim, recovery).
   */
  get oldestUnshippedMs(): number | undefined {
    return this.oldestMs;
  }

  /** Bytes written that the store has not acknowledged. */
  get unshippedBytes(): number {
    let total = 0;
    for (const [n, size] of this.sizes) {
      if (n > this.cursorPos.segment) total += size;
      else if (n === this.cursorPos.segment) total += size - this.cursorPos.offset;
    }
    return total;
  }

  /**
   * Appends complete lines (each ending in "\n") in one write. Resolves when the bytes are written
   * and, with fsync `always`, on disk. On failure the segment is cut back to its previous length,
   * so a later append never lands after half a line.
   */
  async append(data: Buffer, hot?: HotLines<Tag>): Promise<void> {
    if (this.closed) throw new AuditError('audit.not_running', 'spool is closed');
    if (this.syncError) {
      const err = this.syncError;
      this.syncError = undefined;
      throw err;
    }
    if (this.dirtyTail) await this.cutTail();
    const wasEmpty = !this.hasDataAfter(this.cursorPos);
    const size = this.sizes.get(this.active) ?? 0;
    if (size > 0 && size + data.length > this.opts.segmentBytes) await this.rotate();
    try {
      await this.writeAll(data);
    } catch (err) {
      // A full disk while everything in the active segment is shipped: only a fresh segment lets
      // that one be deleted, so recycle it and try once more.
      if (!isNoSpace(err) || !this.activeFullyShipped()) throw spoolIoError(`cannot write spool segment ${segmentFileName(this.active)}`, err);
      await this.recycleActive();
      try {
        await this.writeAll(data);
      } catch (again) {
        throw spoolIoError(`cannot write spool segment ${segmentFileName(this.active)}`, again);
      }
    }
    const start = this.sizes.get(this.active) ?? 0;
    this.sizes.set(this.active, start + data.length);
    this.totalBytes += data.length;
    if (wasEmpty || this.oldestMs === undefined) this.oldestMs = this.timeOf(hot?.lines[0] ?? firstLine(data));
    if (hot) this.remember(start, data.length, hot);
    if (this.opts.fsync === 'interval') this.scheduleSync();
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** fsync `always`: segments are O_DSYNC and zero-filled ahead of their data. */
  private get dsync(): boolean {
    return this.opts.fsync === 'always';
  }

  /**
   * Writes at the end of the active segment's data; with fsync always the write is durable when it
   * returns (O_DSYNC). On failure cuts the segment back so no partial line stays.
   */
  private async writeAll(data: Buffer): Promise<void> {
    const fh = this.fh!;
    const at = this.sizes.get(this.active) ?? 0;
    let written = 0;
    try {
      if (this.dsync && at + data.length > this.zeroedTo) await this.zeroAhead(fh, at + data.length);
      while (written < data.length) {
        const n = await (this.opts.write ? this.opts.write(fh, data, written, data.length - written, at + written) : writeAt(fh, data, written, data.length - written, at + written));
        if (!(n > 0)) throw Object.assign(new Error(`short write to a spool segment (${n} bytes)`), { code: 'EIO' });
        written += n;
      }
      if (this.dsync) this.syncCount++;
      if (this.zeroedTo < at + data.length) this.zeroedTo = at + data.length;
    } catch (err) {
      this.dirtyTail = true;
      await this.cutTail().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Zero-fills the active segment from `zeroedTo` to ZERO_AHEAD_BYTES past it (not past
   * `segmentBytes`), durably: appends inside that region change no metadata, so their O_DSYNC
   * flush needs no journal commit. When `need` goes past the segment bound (one long append), the
   * write simply extends the file (O_DSYNC covers the size too). On a full disk the zeros are
   * skipped: the append itself decides whether there is room.
   */
  private async zeroAhead(fh: FileHandle, need: number): Promise<void> {
    const from = Math.max(this.zeroedTo, this.sizes.get(this.active) ?? 0);
    const to = Math.min(from + ZERO_AHEAD_BYTES, this.opts.segmentBytes);
    if (to < need) return;
    const zeros = Buffer.alloc(to - from);
    let done = 0;
    try {
      while (done < zeros.length) {
        const { bytesWritten } = await fh.write(zeros, done, zeros.length - done, from + done);
        if (bytesWritten <= 0) return;
        done += bytesWritten;
      }
    } catch (err) {
      if (isNoSpace(err)) return;
      throw err;
    } finally {
      // Zeros partly written (a full disk, a short write) are still past the data: sealing and
      // closing must know the file is longer than its lines.
      this.zeroedTo = Math.max(this.zeroedTo, from + done);
    }
  }

  /** Opens segment `n` for writing (O_DSYNC with fsync always); `create` insists it is new. */
  private openSegment(n: number, create: boolean): Promise<FileHandle> {
    const flags = constants.O_RDWR | constants.O_CREAT | (create ? constants.O_EXCL : 0) | (this.dsync ? constants.O_DSYNC : 0);
    return open(join(this.dir, segmentFileName(n)), flags, 0o644);
  }

  private activeFullyShipped(): boolean {
    const size = this.sizes.get(this.active) ?? 0;
    return size > 0 && this.cursorPos.segment === this.active && this.cursorPos.offset >= size;
  }

  /** Starts a new segment and deletes the old active one, which the store holds entirely. */
  private async recycleActive(): Promise<void> {
    const old = this.active;
    try {
      await this.rotate();
      await unlink(join(this.dir, segmentFileName(old)));
    } catch (err) {
      throw spoolIoError(`cannot recycle spool segment ${segmentFileName(old)}`, err);
    }
    this.dirtyTail = false;
    this.totalBytes -= this.sizes.get(old) ?? 0;
    this.sizes.delete(old);
    this.cursorPos = { segment: this.active, offset: 0 };
    this.forgetRecent();
  }

  private remember(start: number, length: number, hot: HotLines<Tag>): void {
    const starts = new Array<number>(hot.lines.length);
    let at = start;
    for (let i = 0; i < hot.lines.length; i++) {
      starts[i] = at;
      at += hot.lineBytes[i]! + 1;
    }
    // A writer that miscounted would make memory and disk disagree: keep such an append on disk only.
    if (at !== start + length) return;
    this.recent.push({ segment: this.active, start, end: start + length, lines: hot.lines, starts, tags: hot.tags });
    this.recentBytes += length;
    while (this.recentBytes > RECENT_MAX_BYTES && this.recent.length) {
      const old = this.recent.shift()!;
      this.recentBytes -= old.end - old.start;
    }
  }

  /** Forgets recent appends the cursor has passed (or whose segment is gone). */
  private forgetRecent(): void {
    const c = this.cursorPos;
    while (this.recent.length) {
      const e = this.recent[0]!;
      if (e.segment > c.segment || (e.segment === c.segment && e.end > c.offset)) break;
      this.recentBytes -= e.end - e.start;
      this.recent.shift();
    }
  }

  /** Serves a read from memory when `pos` is the start of a remembered line; undefined otherwise. */
  private readRecent(pos: SpoolPosition, maxLines: number, maxBytes: number): SpoolBatch<Tag> | undefined {
    let k = this.recent.findIndex((e) => e.segment === pos.segment && e.start <= pos.offset && pos.offset < e.end);
    if (k < 0) return undefined;
    let e = this.recent[k]!;
    let i = e.starts.indexOf(pos.offset);
    if (i < 0) return undefined;
    const lines: string[] = [];
    const tags: Tag[] = [];
    let bytes = 0;
    let offset = pos.offset;
    for (;;) {
      const end = i + 1 < e.starts.length ? e.starts[i + 1]! : e.end;
      const len = end - offset;
      if (lines.length && (lines.length >= maxLines || bytes + len > maxBytes)) break;
      lines.push(e.lines[i]!);
      tags.push(e.tags[i]!);
      bytes += len;
      offset = end;
      i++;
      if (i < e.lines.length) continue;
      const next = this.recent[k + 1];
      if (!next || next.segment !== e.segment || next.start !== e.end) break;
      k++;
      e = next;
      i = 0;
    }
    return { lines, tags, bytes, end: { segment: pos.segment, offset } };
  }

  private async cutTail(): Promise<void> {
    try {
      const size = this.sizes.get(this.active) ?? 0;
      await this.fh!.truncate(size);
      // The zeros ahead went with it: the next append fills them in again first.
      this.zeroedTo = size;
      this.dirtyTail = false;
    } catch (err) {
      throw spoolIoError(`cannot cut the failed write from ${segmentFileName(this.active)}`, err);
    }
  }

  private scheduleSync(): void {
    this.unsynced = true;
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncNow().catch((err: unknown) => {
        // Reported on the next append: the writer must learn that earlier data may not be durable.
        this.syncError = err instanceof AuditError ? err : spoolIoError('cannot sync spool', err);
      });
    }, this.opts.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private async syncNow(): Promise<void> {
    if (!this.unsynced || !this.fh) return;
    this.unsynced = false;
    try {
      await this.datasync(this.fh);
    } catch (err) {
      throw spoolIoError(`cannot sync spool segment ${segmentFileName(this.active)}`, err);
    }
  }

  /** fdatasync of a segment (or the injected one), counted once it succeeded. */
  private async datasync(fh: FileHandle): Promise<void> {
    await (this.opts.datasync ? this.opts.datasync(fh) : fh.datasync());
    this.syncCount++;
  }

  /**
   * Segment data syncs completed since open (recovery's own syncs not counted): with fsync always,
   * one per append (its O_DSYNC write) plus the syncs that seal or close a segment.
   */
  get syncs(): number {
    return this.syncCount;
  }

  private async syncDir(): Promise<void> {
    if (this.opts.fsync === 'none') return;
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  /**
   * Seals the active segment and starts the next. The old one is cut to its data (no zeros ahead:
   * readers and recovery take a sealed segment's file size as its end) and synced before the new
   * file exists, so only the newest segment can ever end in zeros or a torn write.
   */
  private async rotate(): Promise<void> {
    const next = this.active + 1;
    const old = this.fh!;
    const size = this.sizes.get(this.active) ?? 0;
    try {
      // Always with fsync always: whatever zeros went past the data, however far they got.
      if (this.dsync || this.zeroedTo > size) {
        await old.truncate(size);
        this.zeroedTo = size;
      }
      if (this.opts.fsync !== 'none') await this.datasync(old);
    } catch (err) {
      throw spoolIoError(`cannot seal spool segment ${segmentFileName(this.active)}`, err);
    }
    let fh: FileHandle;
    try {
      fh = await this.openSegment(next, true);
    } catch (err) {
      throw spoolIoError(`cannot create spool segment ${segmentFileName(next)}`, err);
    }
    try {
      await this.syncDir();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(join(this.dir, segmentFileName(next))).catch(() => undefined);
      throw spoolIoError(`cannot create spool segment ${segmentFileName(next)}`, err);
    }
    this.unsynced = false;
    await old.close().catch(() => undefined);
    this.fh = fh;
    this.active = next;
    this.zeroedTo = 0;
    this.sizes.set(next, 0);
  }

  /** The position just after the last written line. */
  get end(): SpoolPosition {
    return { segment: this.active, offset: this.sizes.get(this.active) ?? 0 };
  }

  /** True when lines were written after `pos`. */
  hasDataAfter(pos: SpoolPosition): boolean {
    for (const [n, size] of this.sizes) {
      if (n > pos.segment && size > 0) return true;
      if (n === pos.segment && size > pos.offset) return true;
    }
    return false;
  }

  /** Resolves when data is written after `pos`, or when the signal aborts. */
  waitForData(pos: SpoolPosition, signal?: AbortSignal): Promise<void> {
    if (this.hasDataAfter(pos) || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  /** Reads written lines from `from`, at most maxLines and about maxBytes (a longer single line is read whole). */
  async read(from: SpoolPosition, maxLines: number, maxBytes: number): Promise<SpoolBatch<Tag>> {
    let pos = this.normalise(from);
    const size = this.sizes.get(pos.segment);
    if (size !== undefined && pos.offset >= size) {
      const next = this.nextSegment(pos.segment);
      if (next !== undefined) pos = { segment: next, offset: 0 };
    }
    const fromMemory = this.readRecent(pos, maxLines, maxBytes);
    if (fromMemory) return fromMemory;
    const lines: string[] = [];
    let bytes = 0;
    try {
      while (lines.length < maxLines && bytes < maxBytes) {
        const size = this.sizes.get(pos.segment);
        if (size === undefined) break;
        if (pos.offset >= size) {
          const next = this.nextSegment(pos.segment);
          if (next === undefined) break;
          pos = { segment: next, offset: 0 };
          continue;
        }
        const fh = await this.readerFor(pos.segment);
        let want = Math.min(size - pos.offset, Math.max(maxBytes - bytes, 64 * 1024));
        let got = await readAt(fh, pos.offset, want);
        let parsed = completeLines(got);
        while (parsed.consumed === 0 && want < size - pos.offset) {
          // One line longer than the window: widen until it is whole.
          want = Math.min(size - pos.offset, want * 2);
          got = await readAt(fh, pos.offset, want);
          parsed = completeLines(got);
        }
        if (parsed.consumed === 0) {
          // No newline in the rest of a sealed segment: nothing more will ever be written to it (a
          // tail without one is garbage recovery should have cut), so the reader moves on.
          const next = pos.segment === this.active ? undefined : this.nextSegment(pos.segment);
          if (next === undefined) break;
          pos = { segment: next, offset: 0 };
          continue;
        }
        let used = 0;
        let full = false;
        for (const line of parsed.lines) {
          const len = Buffer.byteLength(line) + 1;
          if (lines.length && (lines.length >= maxLines || bytes + len > maxBytes)) {
            full = true;
            break;
          }
          lines.push(line);
          bytes += len;
          used += len;
        }
        pos = { segment: pos.segment, offset: pos.offset + used };
        if (full) break;
      }
    } catch (err) {
      throw spoolIoError(`cannot read spool segment ${segmentFileName(pos.segment)}`, err);
    }
    return { lines, tags: undefined, bytes, end: pos };
  }

  private normalise(pos: SpoolPosition): SpoolPosition {
    if (this.sizes.has(pos.segment)) return pos;
    const next = this.nextSegment(pos.segment);
    return next === undefined ? pos : { segment: next, offset: 0 };
  }

  private nextSegment(after: number): number | undefined {
    let best: number | undefined;
    for (const n of this.sizes.keys()) if (n > after && (best === undefined || n < best)) best = n;
    return best;
  }

  private async readerFor(segment: number): Promise<FileHandle> {
    if (this.readFh?.segment === segment) return this.readFh.fh;
    await this.readFh?.fh.close().catch(() => undefined);
    this.readFh = undefined;
    const fh = await open(join(this.dir, segmentFileName(segment)), 'r');
    this.readFh = { segment, fh };
    return fh;
  }

  /**
   * Records that the store holds everything before `pos`: persists the cursor and deletes sealed
   * segments wholly before it. `lastLine` (the batch's last line) is kept in the cursor file so the
   * chain head is recoverable after every segment holding it was trimmed. The cursor is renamed
   * into place but not synced: losing it only re-ships events, and the store folds exact duplicates.
   */
  async ack(pos: SpoolPosition, lastLine?: string): Promise<void> {
    let next = pos;
    const size = this.sizes.get(pos.segment);
    if (size !== undefined && pos.offset >= size && pos.segment !== this.active) {
      const after = this.nextSegment(pos.segment);
      if (after !== undefined) next = { segment: after, offset: 0 };
    }
    if (comparePositions(next, this.cursorPos) < 0) return;
    this.cursorPos = next;
    if (lastLine !== undefined) this.lastAcked = lastLine;
    this.forgetRecent();
    try {
      // Trim before writing the cursor: on a full disk the deletes are what make room for it.
      for (const n of [...this.sizes.keys()]) {
        if (n >= next.segment || n === this.active) continue;
        if (this.readFh?.segment === n) {
          await this.readFh.fh.close().catch(() => undefined);
          this.readFh = undefined;
        }
        await unlink(join(this.dir, segmentFileName(n)));
        this.totalBytes -= this.sizes.get(n) ?? 0;
        this.sizes.delete(n);
      }
      const tmp = join(this.dir, `${CURSOR_FILE}.tmp`);
      const file: CursorFile = { ...next, ...(this.lastAcked === undefined ? {} : { last: this.lastAcked }) };
      await writeFile(tmp, JSON.stringify(file));
      await rename(tmp, join(this.dir, CURSOR_FILE));
    } catch (err) {
      throw spoolIoError('cannot record shipped position', err);
    } finally {
      await this.refreshOldest();
    }
  }

  /**
   * A ring without a store: deletes the oldest segments, shipped or not, until `incoming` more
   * bytes fit in `maxBytes` (the cursor passes them as if shipped, and the last line of the last
   * one trimmed becomes the recoverable chain head). The active segment is sealed first when it is
   * the only one left. Returns what was trimmed that no store had acknowledged.
   */
  async makeRoom(incoming: number, maxBytes: number): Promise<TrimResult> {
    const trimmed: TrimResult = { lines: 0, bytes: 0 };
    while (this.totalBytes + incoming > maxBytes) {
      const oldest = [...this.sizes.keys()].sort((a, b) => a - b)[0];
      if (oldest === undefined) break;
      const size = this.sizes.get(oldest) ?? 0;
      if (oldest === this.active) {
        if (size === 0) break;
        await this.rotate();
        continue;
      }
      const from = oldest === this.cursorPos.segment ? this.cursorPos.offset : oldest > this.cursorPos.segment ? 0 : size;
      let last: string | undefined;
      if (from < size) {
        let buf: Buffer;
        try {
          buf = await readFile(join(this.dir, segmentFileName(oldest)));
        } catch (err) {
          throw spoolIoError(`cannot read spool segment ${segmentFileName(oldest)} to trim it`, err);
        }
        const { lines } = completeLines(buf.subarray(from));
        trimmed.lines += lines.length;
        trimmed.bytes += size - from;
        last = lines.at(-1);
      }
      await this.ack({ segment: oldest, offset: size }, last);
      if (this.sizes.has(oldest)) break; // ack could not move past it (it kept the cursor): stop rather than spin
    }
    return trimmed;
  }

  private timeOf(line: string | undefined): number | undefined {
    if (line === undefined || !this.opts.lineTimeMs) return undefined;
    const t = this.opts.lineTimeMs(line);
    return t === undefined || !Number.isFinite(t) ? undefined : t;
  }

  /** Re-reads the time of the line at the cursor (memory first, else the segment file). */
  private async refreshOldest(): Promise<void> {
    if (!this.hasDataAfter(this.cursorPos)) {
      this.oldestMs = undefined;
      return;
    }
    try {
      this.oldestMs = this.timeOf(await this.firstLineFrom(this.cursorPos));
    } catch {
      // Keep the older value: over-stating the age is the safe error.
    }
  }

  /** The first whole line at or after `from`, read through its own file handle (never the reader's). */
  private async firstLineFrom(from: SpoolPosition): Promise<string | undefined> {
    let pos = this.normalise(from);
    const size = this.sizes.get(pos.segment);
    if (size !== undefined && pos.offset >= size) {
      const next = this.nextSegment(pos.segment);
      if (next === undefined) return undefined;
      pos = { segment: next, offset: 0 };
    }
    const mem = this.readRecent(pos, 1, 1);
    if (mem) return mem.lines[0];
    const end = this.sizes.get(pos.segment) ?? 0;
    const fh = await open(join(this.dir, segmentFileName(pos.segment)), 'r');
    try {
      for (let want = 4096; ; want *= 2) {
        const got = await readAt(fh, pos.offset, Math.min(want, end - pos.offset));
        const nl = got.indexOf(NEWLINE);
        if (nl >= 0) return got.toString('utf8', 0, nl);
        if (pos.offset + got.length >= end || got.length === 0) return undefined;
      }
    } finally {
      await fh.close();
    }
  }

  /** Syncs what is written (any policy) and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    try {
      // A spool at rest holds exactly its lines: the zeros ahead of the data go.
      const size = this.sizes.get(this.active) ?? 0;
      if (this.fh && (this.dsync || this.zeroedTo > size)) await this.fh.truncate(size);
      if (this.fh && this.opts.fsync !== 'none') await this.datasync(this.fh);
    } catch (err) {
      throw spoolIoError('cannot sync spool at close', err);
    } finally {
      await this.fh?.close().catch(() => undefined);
      await this.readFh?.fh.close().catch(() => undefined);
      this.fh = undefined;
      this.readFh = undefined;
    }
  }
}

const NUL = 0x00;

/**
 * The part of a segment recovery keeps: up to its last newline before the first NUL byte (a JSON
 * line never holds a raw NUL: any zero is the zero-fill ahead, or a page of a torn write that did
 * not reach the disk while a later page did, so nothing after it can be trusted), then back to the
 * last line `isValid` accepts that also links to the line before it. Raw byte offsets throughout:
 * a decoded length is not a byte length once invalid UTF-8 became U+FFFD.
 * `written` is where the non-zero bytes end (what was cut past `keep` short of it was a torn write).
 */
export function validPrefix(
  buf: Buffer,
  isValid?: (line: string) => boolean,
  isValidSuccessor?: (prev: string, line: string) => boolean,
): { keep: number; line: string | undefined; written: number } {
  let written = buf.length;
  while (written > 0 && buf[written - 1] === NUL) written--;
  const nul = buf.indexOf(NUL);
  const end = nul < 0 ? buf.length : nul;
  let keep = end > 0 ? buf.lastIndexOf(NEWLINE, end - 1) + 1 : 0;
  while (keep > 0) {
    const start = keep >= 2 ? buf.lastIndexOf(NEWLINE, keep - 2) + 1 : 0;
    const line = buf.toString('utf8', start, keep - 1);
    if (line.length && (isValid?.(line) ?? true)) {
      const prev = start > 0 ? buf.toString('utf8', start >= 2 ? buf.lastIndexOf(NEWLINE, start - 2) + 1 : 0, start - 1) : undefined;
      if (prev === undefined || !isValidSuccessor || isValidSuccessor(prev, line)) return { keep, line, written };
    }
    keep = start;
  }
  return { keep: 0, line: undefined, written };
}

/** Cuts a sealed segment ending in a zero byte back to its last newline before the first NUL; returns its size. */
async function cutAtFirstNul(path: string, size: number): Promise<number> {
  if (size === 0) return size;
  const fh = await open(path, 'r+');
  try {
    const last = await readAt(fh, size - 1, 1);
    if (last[0] !== NUL) return size;
    const buf = await readAt(fh, 0, size);
    const nul = buf.indexOf(NUL);
    const keep = nul > 0 ? buf.lastIndexOf(NEWLINE, nul - 1) + 1 : 0;
    await fh.truncate(keep);
    await fh.sync();
    return keep;
  } finally {
    await fh.close();
  }
}

function firstLine(data: Buffer): string {
  const nl = data.indexOf(NEWLINE);
  return data.toString('utf8', 0, nl < 0 ? data.length : nl);
}

async function writeAt(fh: FileHandle, data: Buffer, offset: number, length: number, position: number): Promise<number> {
  return (await fh.write(data, offset, length, position)).bytesWritten;
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}
