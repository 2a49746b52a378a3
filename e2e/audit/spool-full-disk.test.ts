// The spool's zero-fill ahead (fsync always) on a real full disk (a size-limited tmpfs, needs
// root): zeros that only partly reached the segment before ENOSPC are still cut when the segment
// is sealed, so a segment at rest holds exactly its lines and a restarted reader ships past it.
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Spool, segmentFileName } from '../../sidecar/src/audit/spool.ts';

let mountPoint: string;
beforeAll(() => {
  mountPoint = mkdtempSync(join(tmpdir(), 'sluice-spool-tmpfs-'));
  const res = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'sluice-spool-test', mountPoint], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`cannot mount a tmpfs for the full-disk test (needs root): ${res.stderr}`);
});
afterAll(() => {
  // Lazily: a failed test may still hold a spool file open.
  spawnSync('umount', ['-l', mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

/** Fills the file system but for about `free` bytes; returns the filler's path. */
function fillLeaving(free: number): string {
  const path = join(mountPoint, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  ftruncateSync(fd, Math.max(0, fstatSync(fd).size - free));
  closeSync(fd);
  return path;
}

it('a segment sealed after a zero-fill cut short by ENOSPC holds exactly its lines, and everything reads back after a restart', async () => {
  const dir = join(mountPoint, 'spool');
  mkdirSync(dir);
  const segmentBytes = 64 * 1024;
  const opts = { segmentBytes, fsync: 'always' as const, fsyncIntervalMs: 1000 };
  const { spool } = await Spool.open(dir, opts);
  const filler = fillLeaving(16 * 1024);
  const first = Buffer.from('{"n":1}\n');
  // The zero-fill ahead (to the 64 KiB segment bound) runs out of disk part way; the line fits.
  await spool.append(first);
  expect(statSync(join(dir, segmentFileName(1))).size).toBeGreaterThan(first.length);
  unlinkSync(filler);
  // A line too long for the rest of the segment seals it and starts the next.
  const long = Buffer.from(`{"n":2,"pad":"${'x'.repeat(segmentBytes - 20)}"}\n`);
  await spool.append(long);
  expect(statSync(join(dir, segmentFileName(1))).size).toBe(first.length);
  await spool.close();
  const { spool: again } = await Spool.open(dir, opts);
  const got: string[] = [];
  let pos = again.cursor;
  for (let k = 0; k < 4; k++) {
    const batch = await again.read(pos, 100, 1 << 20);
    got.push(...batch.lines);
    pos = batch.end;
  }
  expect(got).toEqual([first.toString().trimEnd(), long.toString().trimEnd()]);
  await again.close();
  expect(readFileSync(join(dir, segmentFileName(1)))).toEqual(first);
});
