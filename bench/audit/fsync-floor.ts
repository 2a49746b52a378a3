// The durability floor of a disk: what one durable append of an audit-sized line (700 bytes) costs,
// serially, as `fsync: always` pays it once per group commit — write + fdatasync (what the spool
// does) and, for comparison, one write on an O_DSYNC handle. Prints latency percentiles and this
// process's CPU per durable append. It only writes a scratch file in --dir (default: the OS tmpdir,
// where bench/audit puts its spools) and deletes it.
//   node bench/audit/fsync-floor.ts [--appends N] [--rounds R] [--dir DIR]
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    appends: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    dir: { type: 'string', default: tmpdir() },
  },
});
const N = Number(values.appends);
const ROUNDS = Number(values.rounds);
const line = Buffer.alloc(700, 0x61);
line[699] = 0x0a;

async function durableAppends(path: string, mode: 'fdatasync' | 'dsync'): Promise<string> {
  const flags = mode === 'dsync' ? constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC : 'a';
  const fh = await open(path, flags);
  const lat = new Float64Array(N);
  const c0 = process.cpuUsage();
  try {
    for (let i = 0; i < N; i++) {
      const s = process.hrtime.bigint();
      await fh.write(line);
      if (mode === 'fdatasync') await fh.datasync();
      lat[i] = Number(process.hrtime.bigint() - s) / 1e3;
    }
  } finally {
    await fh.close();
  }
  const cpu = process.cpuUsage(c0);
  lat.sort();
  const p = (q: number): string => lat[Math.min(N - 1, Math.floor(N * q))]!.toFixed(0).padStart(6);
  const label = mode === 'fdatasync' ? 'write + fdatasync' : 'write on O_DSYNC';
  return `${label.padEnd(18)} p50 ${p(0.5)} µs  p90 ${p(0.9)} µs  p99 ${p(0.99)} µs  CPU ${((cpu.user + cpu.system) / N).toFixed(0).padStart(4)} µs per durable append`;
}

const dir = await mkdtemp(join(values.dir, 'sluice-fsync-floor-'));
try {
  console.log(`durable 700-byte appends, ${N} serial per row, ${ROUNDS} interleaved rounds, in ${values.dir}`);
  for (let r = 0; r < ROUNDS; r++) {
    console.log(await durableAppends(join(dir, `a${r}.ndjson`), 'fdatasync'));
    console.log(await durableAppends(join(dir, `d${r}.ndjson`), 'dsync'));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
