// The durability floor of a disk: what one durable append of an audit-sized line (700 bytes) costs,
// serially (one record in flight: what `fsync: always` pays per event at one connection), in the
// ways a spool can make it durable:
//   write + fdatasync           — an O_APPEND file grown by each write, then fdatasync (the spool
//                                 before issue 23: two thread-pool trips, and a journal commit per
//                                 sync because the file's size changed)
//   pre-zeroed, O_DSYNC pwrite  — what the spool does now: a write at the end of the data inside a
//                                 segment already zero-filled and durable, on an O_DSYNC handle (one
//                                 trip; the size does not change, so the flush carries no metadata)
// Prints latency percentiles and this process's CPU per durable append. Also importable:
// `measureFsyncFloor()` is what bench/proxy prints next to its figures. It only writes scratch
// files in --dir (default: the OS tmpdir, where bench/audit and bench/proxy put their spools) and
// deletes them.
//   node bench/audit/fsync-floor.ts [--appends N] [--rounds R] [--dir DIR]
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export type FloorMode = 'append+fdatasync' | 'prezeroed+dsync';

export interface FloorRow {
  mode: FloorMode;
  appends: number;
  p50us: number;
  p90us: number;
  p99us: number;
  /** This process's user + system CPU per durable append. */
  cpuUs: number;
}

const LINE = Buffer.alloc(700, 0x61);
LINE[699] = 0x0a;

async function durableAppends(path: string, mode: FloorMode, n: number): Promise<FloorRow> {
  let fh;
  if (mode === 'prezeroed+dsync') {
    // Zero-fill and sync first, as the spool does ahead of its writes (not measured).
    const z = await open(path, 'w');
    await z.write(Buffer.alloc(n * LINE.length));
    await z.sync();
    await z.close();
    fh = await open(path, constants.O_RDWR | constants.O_DSYNC);
  } else {
    fh = await open(path, 'a');
  }
  const lat = new Float64Array(n);
  const c0 = process.cpuUsage();
  try {
    for (let i = 0, pos = 0; i < n; i++, pos += LINE.length) {
      const s = process.hrtime.bigint();
      if (mode === 'prezeroed+dsync') await fh.write(LINE, 0, LINE.length, pos);
      else {
        await fh.write(LINE);
        await fh.datasync();
      }
      lat[i] = Number(process.hrtime.bigint() - s) / 1e3;
    }
  } finally {
    await fh.close();
  }
  const cpu = process.cpuUsage(c0);
  lat.sort();
  const p = (q: number): number => lat[Math.min(n - 1, Math.floor(n * q))]!;
  return { mode, appends: n, p50us: p(0.5), p90us: p(0.9), p99us: p(0.99), cpuUs: (cpu.user + cpu.system) / n };
}

/** Runs `rounds` interleaved rounds of both modes and returns every row (median-worthy on a busy machine). */
export async function measureFsyncFloor(opts: { appends?: number; rounds?: number; dir?: string } = {}): Promise<FloorRow[]> {
  const n = opts.appends ?? 500;
  const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'sluice-fsync-floor-'));
  const rows: FloorRow[] = [];
  try {
    for (let r = 0; r < (opts.rounds ?? 1); r++) {
      rows.push(await durableAppends(join(dir, `a${r}.ndjson`), 'append+fdatasync', n));
      rows.push(await durableAppends(join(dir, `z${r}.ndjson`), 'prezeroed+dsync', n));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

export function formatFloorRow(r: FloorRow): string {
  const us = (v: number): string => v.toFixed(0).padStart(6);
  const label = r.mode === 'prezeroed+dsync' ? 'pre-zeroed, O_DSYNC pwrite (spool)' : 'write + fdatasync (O_APPEND)';
  return `${label.padEnd(36)} p50 ${us(r.p50us)} µs  p90 ${us(r.p90us)} µs  p99 ${us(r.p99us)} µs  CPU ${us(r.cpuUs)} µs per durable append`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      appends: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '2' },
      dir: { type: 'string', default: tmpdir() },
    },
  });
  const appends = Number(values.appends);
  const rounds = Number(values.rounds);
  console.log(`durable 700-byte appends, ${appends} serial per row, ${rounds} interleaved rounds, in ${values.dir}`);
  for (const row of await measureFsyncFloor({ appends, rounds, dir: values.dir })) console.log(formatFloorRow(row));
}
