// The write-ahead spool on a real file system: appends land in segments, reads return whole
// lines in order, acks trim, and recovery cuts a torn or garbage tail and finds the head.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Spool, segmentFileName } from '../../src/audit/spool.ts';
import { completeLines } from '../../../lib/src/audit/spool-format.ts';
import type { SpoolOptions } from '../../src/audit/spool.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-spool-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const opts: SpoolOptions = { segmentBytes: 100, fsync: 'always', fsyncIntervalMs: 10 };
const lines = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `{"n":${from + i},"pad":"xxxxxxxxxx"}`);
const buf = (ls: string[]): Buffer => Buffer.from(`${ls.join('\n')}\n`);
const segments = (): string[] => readdirSync(dir).filter((n) => n.startsWith('seg-')).sort();

describe('completeLines', () => {
  it('keeps only newline-terminated lines', () => {
    expect(completeLines(Buffer.from('a\nb\nc'))).toEqual({ lines: ['a', 'b'], consumed: 4 });
    expect(completeLines(Buffer.from('abc'))).toEqual({ lines: [], consumed: 0 });
    expect(completeLines(Buffer.from(''))).toEqual({ lines: [], consumed: 0 });
  });
});

describe('Spool', () => {
  it('appends into rotating segments and reads everything back in order', async () => {
    const { spool, recovery } = await Spool.open(dir, opts);
    expect(recovery).toEqual({ lastLine: undefined, truncatedBytes: 0 });
    for (let i = 0; i < 10; i++) await spool.append(buf(lines(i * 2, 2)));
    expect(segments().length).toBeGreaterThan(3);
    const got: string[] = [];
    let pos = spool.cursor;
    for (;;) {
      const batch = await spool.read(pos, 3, 1000);
      if (!batch.lines.length) break;
      got.push(...batch.lines);
      pos = batch.end;
    }
    expect(got).toEqual(lines(0, 20));
    await spool.close();
    // At rest (sealed or closed) a segment holds exactly its lines; while open, fsync always keeps
    // the active one zero-filled ahead (see the zero-fill test below).
    expect(spool.bytes).toBe(segments().reduce((n, s) => n + statSync(join(dir, s)).size, 0));
  });

  it('trims acknowledged segments and keeps the unshipped ones', async () => {
    const { spool } = await Spool.open(dir, opts);
    for (let i = 0; i < 10; i++) await spool.append(buf(lines(i * 2, 2)));
    const before = segments().length;
    const batch = await spool.read(spool.cursor, 12, 10_000);
    await spool.ack(batch.end, batch.lines.at(-1));
    expect(segments().length).toBeLessThan(before);
    expect(spool.unshippedBytes).toBe(buf(lines(12, 8)).length);
    const rest = await spool.read(spool.cursor, 100, 10_000);
    expect(rest.lines).toEqual(lines(12, 8));
    await spool.close();
    // The cursor survives a restart: reading resumes after the acknowledged lines.
    const { spool: again } = await Spool.open(dir, opts);
    expect((await again.read(again.cursor, 100, 10_000)).lines).toEqual(lines(12, 8));
    await again.close();
  });

  it('recovers after a torn write: cuts the partial line and reports the last whole one', async () => {
    const { spool } = await Spool.open(dir, { ...opts, segmentBytes: 10_000 });
    await spool.append(buf(lines(0, 3)));
    await spool.close();
    const seg = join(dir, segments().at(-1)!);
    appendFileSync(seg, '{"n":3,"pad":"xx');
    const { spool: again, recovery } = await Spool.open(dir, { ...opts, segmentBytes: 10_000 });
    expect(recovery.lastLine).toBe(lines(2, 1)[0]);
    expect(recovery.truncatedBytes).toBe('{"n":3,"pad":"xx'.length);
    await again.append(buf(lines(3, 1)));
    await again.close();
    expect(readFileSync(seg, 'utf8')).toBe(buf(lines(0, 4)).toString());
  });

  it('cuts trailing lines the validator rejects (zeros from a lost write) back to the last valid one', async () => {
    const isValidTail = (l: string): boolean => l.startsWith('{"n"');
    const { spool } = await Spool.open(dir, { ...opts, segmentBytes: 10_000, isValidTail });
    await spool.append(buf(lines(0, 2)));
    await spool.close();
    const seg = join(dir, segments().at(-1)!);
    appendFileSync(seg, Buffer.concat([Buffer.alloc(40), Buffer.from('\n'), Buffer.alloc(10)]));
    const { spool: again, recovery } = await Spool.open(dir, { ...opts, segmentBytes: 10_000, isValidTail });
    expect(recovery.lastLine).toBe(lines(1, 1)[0]);
    expect(statSync(seg).size).toBe(buf(lines(0, 2)).length);
    await again.close();
  });

  it('finds the head in an older segment when the newest is empty, and in the cursor when all were trimmed', async () => {
    const { spool } = await Spool.open(dir, opts);
    for (let i = 0; i < 6; i++) await spool.append(buf(lines(i, 1)));
    await spool.close();
    writeFileSync(join(dir, segmentFileName(99)), '');
    let { spool: s2, recovery } = await Spool.open(dir, opts);
    expect(recovery.lastLine).toBe(lines(5, 1)[0]);
    const all = await s2.read(s2.cursor, 100, 10_000);
    await s2.ack(all.end, all.lines.at(-1));
    await s2.close();
    for (const s of segments()) truncateSync(join(dir, s), 0);
    ({ spool: s2, recovery } = await Spool.open(dir, opts));
    expect(recovery.lastLine).toBe(lines(5, 1)[0]);
    await s2.close();
  });

  it('wakes a reader waiting for data', async () => {
    const { spool } = await Spool.open(dir, opts);
    const waiting = spool.waitForData(spool.cursor);
    let woke = false;
    void waiting.then(() => {
      woke = true;
    });
    await Promise.resolve();
    expect(woke).toBe(false);
    await spool.append(buf(lines(0, 1)));
    await waiting;
    expect(woke).toBe(true);
    await spool.close();
  });

  it('ends a batch at maxBytes and continues from there', async () => {
    const { spool } = await Spool.open(dir, { ...opts, segmentBytes: 1 << 20 });
    await spool.append(buf(lines(0, 10)));
    const len = buf(lines(0, 1)).length;
    const first = await spool.read(spool.cursor, 100, len * 3 + 5);
    expect(first.lines).toEqual(lines(0, 3));
    const second = await spool.read(first.end, 100, len * 3 + 5);
    expect(second.lines).toEqual(lines(3, 3));
    await spool.close();
  });

  it('serves lines it still holds in memory with their tags, exactly as the files hold them', async () => {
    const { spool } = await Spool.open<number>(dir, opts);
    for (let i = 0; i < 10; i++) {
      const ls = lines(i * 2, 2);
      await spool.append(buf(ls), { lines: ls, lineBytes: ls.map((l) => Buffer.byteLength(l)), tags: [i * 2, i * 2 + 1] });
    }
    const memory: string[] = [];
    const tags: (number | undefined)[] = [];
    let pos = spool.cursor;
    for (;;) {
      const batch = await spool.read(pos, 3, 1000);
      if (!batch.lines.length) break;
      memory.push(...batch.lines);
      tags.push(...(batch.tags ?? batch.lines.map(() => undefined)));
      pos = batch.end;
    }
    expect(memory).toEqual(lines(0, 20));
    expect(tags).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await spool.close();
    // A fresh process has no memory of them: the same lines come from the files, untagged.
    const { spool: again } = await Spool.open<number>(dir, opts);
    const disk = await again.read(again.cursor, 3, 1000);
    expect(disk.lines).toEqual(lines(0, 3));
    expect(disk.tags).toBeUndefined();
    await again.close();
  });

  it('keeps an append whose line sizes do not add up out of memory', async () => {
    const { spool } = await Spool.open<number>(dir, { ...opts, segmentBytes: 10_000 });
    const ls = lines(0, 2);
    await spool.append(buf(ls), { lines: ls, lineBytes: [1, 1], tags: [0, 1] });
    const batch = await spool.read(spool.cursor, 10, 10_000);
    expect(batch.lines).toEqual(ls);
    expect(batch.tags).toBeUndefined();
    await spool.close();
  });

  it('reads one line longer than the read window whole', async () => {
    const { spool } = await Spool.open(dir, { ...opts, segmentBytes: 1 << 20 });
    const long = `{"big":"${'y'.repeat(200_000)}"}`;
    await spool.append(buf([long, 'x']));
    const batch = await spool.read(spool.cursor, 10, 1000);
    expect(batch.lines).toEqual([long]);
    await spool.close();
  });

  it('fsync always: the active segment is zero-filled ahead, appends inside it leave its size alone, and a crash there (data + zeros) recovers to the last line without reporting a torn write', async () => {
    const segmentBytes = 4096;
    const { spool } = await Spool.open(dir, { ...opts, segmentBytes });
    await spool.append(buf(lines(0, 2)));
    const seg = join(dir, segments().at(-1)!);
    // Zero-filled to the segment bound (ZERO_AHEAD_BYTES is larger), data at the front.
    expect(statSync(seg).size).toBe(segmentBytes);
    for (let i = 2; i < 40; i += 2) await spool.append(buf(lines(i, 2)));
    expect(statSync(seg).size).toBe(segmentBytes);
    const data = buf(lines(0, 40));
    const onDisk = readFileSync(seg);
    expect(onDisk.subarray(0, data.length)).toEqual(data);
    expect(onDisk.subarray(data.length).every((b) => b === 0)).toBe(true);
    // A crash now leaves the file as it is: copy it into a fresh spool directory and recover it.
    const crashed = mkdtempSync(join(tmpdir(), 'sluice-spool-crash-'));
    try {
      writeFileSync(join(crashed, segments().at(-1)!), onDisk);
      const { spool: again, recovery } = await Spool.open(crashed, { ...opts, segmentBytes });
      expect(recovery).toEqual({ lastLine: lines(39, 1)[0], truncatedBytes: 0 });
      expect(again.bytes).toBe(data.length);
      await again.append(buf(lines(40, 1)));
      expect((await again.read(again.cursor, 100, 100_000)).lines).toEqual(lines(0, 41));
      await again.close();
      expect(readFileSync(join(crashed, segments().at(-1)!), 'utf8')).toBe(buf(lines(0, 41)).toString());
    } finally {
      rmSync(crashed, { recursive: true, force: true });
    }
    // Sealing cuts the zeros: the next segment starts once this one is full.
    while (segments().length === 1) await spool.append(buf(lines(100, 2)));
    expect(readFileSync(seg).includes(0)).toBe(false);
    await spool.close();
    for (const s of segments()) expect(readFileSync(join(dir, s)).includes(0)).toBe(false);
    expect(spool.bytes).toBe(segments().reduce((n, s) => n + statSync(join(dir, s)).size, 0));
  });

  it.each(['interval', 'none'] as const)('writes with fsync %s and syncs on close', async (fsync) => {
    const { spool } = await Spool.open(dir, { ...opts, fsync });
    await spool.append(buf(lines(0, 2)));
    await spool.close();
    expect(readFileSync(join(dir, segments()[0]!), 'utf8')).toBe(buf(lines(0, 2)).toString());
  });

  it('refuses appends after close with audit.not_running', async () => {
    const { spool } = await Spool.open(dir, opts);
    await spool.close();
    await expect(spool.append(buf(['x']))).rejects.toMatchObject({ code: 'audit.not_running' });
  });

  it('reports an unusable directory as audit.spool_io', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    await expect(Spool.open(join(file, 'spool'), opts)).rejects.toMatchObject({ code: 'audit.spool_io', errno: 'ENOTDIR' });
  });
});

describe('Spool: its own oldest-unshipped time and the ring', () => {
  // Lines carry their write time in `t` (the recorder's lines carry `time`).
  const timed = (from: number, n: number, t: number): string[] => Array.from({ length: n }, (_, i) => `{"n":${from + i},"t":${t + i}}`);
  const lineTimeMs = (l: string): number | undefined => (JSON.parse(l) as { t?: number }).t;
  const ring: SpoolOptions = { segmentBytes: 100, fsync: 'none', fsyncIntervalMs: 10, lineTimeMs };

  it('knows the write time of the oldest line no store acknowledged, with or without a reader, across a restart', async () => {
    const { spool } = await Spool.open(dir, ring);
    expect(spool.oldestUnshippedMs).toBeUndefined();
    await spool.append(buf(timed(0, 3, 1000)));
    await spool.append(buf(timed(3, 3, 2000)));
    expect(spool.oldestUnshippedMs).toBe(1000);
    // Acknowledge the first three lines: the oldest is now the fourth (read back from memory or disk).
    const first = await spool.read(spool.cursor, 3, 10_000);
    await spool.ack(first.end, first.lines.at(-1));
    expect(spool.oldestUnshippedMs).toBe(2000);
    await spool.close();
    const again = await Spool.open(dir, ring);
    expect(again.spool.oldestUnshippedMs).toBe(2000);
    const rest = await again.spool.read(again.spool.cursor, 100, 10_000);
    await again.spool.ack(rest.end, rest.lines.at(-1));
    expect(again.spool.oldestUnshippedMs).toBeUndefined();
    await again.spool.append(buf(timed(6, 1, 5000)));
    expect(again.spool.oldestUnshippedMs).toBe(5000);
    await again.spool.close();
  });

  it('makeRoom trims the oldest segments, counts what no store had, and keeps the head recoverable', async () => {
    const { spool } = await Spool.open(dir, ring);
    let trimmed = 0;
    for (let i = 0; i < 40; i++) {
      const data = buf(timed(i * 2, 2, i * 10));
      trimmed += (await spool.makeRoom(data.length, 400)).lines;
      await spool.append(data);
      expect(spool.bytes).toBeLessThanOrEqual(400);
    }
    const kept = (await spool.read(spool.cursor, 1000, 100_000)).lines;
    expect(kept.length + trimmed).toBe(80);
    // What is left is the newest lines, in order, and the oldest-unshipped time is the first of them.
    expect(kept.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual(Array.from({ length: kept.length }, (_, i) => 80 - kept.length + i));
    expect(spool.oldestUnshippedMs).toBe(lineTimeMs(kept[0]!));
    await spool.close();
    const again = await Spool.open(dir, ring);
    expect(again.recovery.lastLine).toBe(kept.at(-1));
    expect((await again.spool.read(again.spool.cursor, 1000, 100_000)).lines).toEqual(kept);
    await again.spool.close();
  });
});

describe('Spool recovery after a torn O_DSYNC write (pages of one write persisted in any order)', () => {
  const big = { ...opts, segmentBytes: 4 * 1024 * 1024 };
  const json = (i: number, note = ''): string => JSON.stringify({ seq: i, note });
  const isValidTail = (l: string): boolean => {
    try {
      return typeof (JSON.parse(l) as { seq?: unknown }).seq === 'number';
    } catch {
      return false;
    }
  };
  const seg1 = (): string => join(dir, segmentFileName(1));

  it('cuts at the first NUL: a later page that reached the disk without the one before it is not kept, shipped or resumed from', async () => {
    const acked = buf([json(1), json(2)]);
    // Page 1 of the write (the head of line 3) never reached the disk, page 2 (line 3's tail, a whole
    // line 4, the head of line 5) did; the zero-fill ahead follows.
    const page2 = Buffer.from(`x","tail-of-3":1}\n${json(4)}\n{"seq":5,"par`);
    writeFileSync(seg1(), Buffer.concat([acked, Buffer.alloc(4096), page2, Buffer.alloc(8192)]));
    const { spool, recovery } = await Spool.open(dir, { ...big, isValidTail });
    expect(recovery).toEqual({ lastLine: json(2), truncatedBytes: 4096 + page2.length });
    expect(readFileSync(seg1())).toEqual(acked);
    expect((await spool.read({ segment: 1, offset: 0 }, 100, 1 << 20)).lines).toEqual([json(1), json(2)]);
    await spool.append(buf([json(3)]));
    await spool.close();
    expect(readFileSync(seg1(), 'utf8')).toBe(buf([json(1), json(2), json(3)]).toString());
  });

  it('cuts by raw byte offsets: a torn tail of invalid UTF-8 does not move the cut into the last acknowledged line', async () => {
    const acked = buf([json(1), json(2, 'é€')]);
    // A page starting with the continuation bytes of a 3-byte character: each decodes to U+FFFD (3 bytes).
    const torn = Buffer.concat([Buffer.from([0x82, 0xac, 0x82, 0xac]), Buffer.from('abc"}\n{"seq":4,"part')]);
    writeFileSync(seg1(), Buffer.concat([acked, torn]));
    const { spool, recovery } = await Spool.open(dir, { ...big, isValidTail });
    expect(recovery).toEqual({ lastLine: json(2, 'é€'), truncatedBytes: torn.length });
    await spool.append(buf([json(3)]));
    await spool.close();
    expect(readFileSync(seg1(), 'utf8')).toBe(buf([json(1), json(2, 'é€'), json(3)]).toString());
  });

  it('keeps a tail line only if it links to the line before it (isValidSuccessor)', async () => {
    // Line 4 is whole and valid, but the line before it is not line 3: its predecessor is missing.
    writeFileSync(seg1(), buf([json(1), json(2), json(4)]));
    const isValidSuccessor = (prev: string, line: string): boolean => (JSON.parse(line) as { seq: number }).seq === (JSON.parse(prev) as { seq: number }).seq + 1;
    const { spool, recovery } = await Spool.open(dir, { ...big, isValidTail, isValidSuccessor });
    expect(recovery.lastLine).toBe(json(2));
    expect(readFileSync(seg1())).toEqual(buf([json(1), json(2)]));
    await spool.close();
  });

  it('a sealed segment left ending in zeros is cut at recovery, and the reader moves on to the next segment', async () => {
    writeFileSync(seg1(), Buffer.concat([buf([json(1)]), Buffer.alloc(1000)]));
    writeFileSync(join(dir, segmentFileName(2)), buf([json(2)]));
    const { spool } = await Spool.open(dir, big);
    expect(statSync(seg1()).size).toBe(buf([json(1)]).length);
    const got: string[] = [];
    let pos = spool.cursor;
    for (let k = 0; k < 4; k++) {
      const b = await spool.read(pos, 100, 1 << 20);
      got.push(...b.lines);
      pos = b.end;
    }
    expect(got).toEqual([json(1), json(2)]);
    expect(pos).toEqual(spool.end);
    await spool.close();
  });

  it('the reader passes the garbage end of a sealed segment (no newline in the rest) instead of waiting at it forever', async () => {
    writeFileSync(seg1(), Buffer.concat([buf([json(1)]), Buffer.from('{"seq":1.5,"torn')]));
    writeFileSync(join(dir, segmentFileName(2)), buf([json(2)]));
    const { spool } = await Spool.open(dir, big);
    const first = await spool.read(spool.cursor, 100, 1 << 20);
    const second = await spool.read(first.end, 100, 1 << 20);
    expect([...first.lines, ...second.lines]).toEqual([json(1), json(2)]);
    await spool.close();
  });
});
