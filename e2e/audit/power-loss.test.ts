// Group commit under power loss, on a real ext4 file system: records are made with many in flight
// (so groups of them share one durable write), segments rotate and are zero-filled ahead while
// they do, and the file system is shut down without flushing its journal in the middle of it
// (EXT4_IOC_SHUTDOWN with NOLOGFLUSH: whatever was not yet durable is gone, every later I/O is EIO),
// with writes in flight. After a remount (journal replayed) a restarted recorder must find every
// event any record() resolved with, in order, in a chain that verifies; the records in flight at
// the shutdown rejected with audit.spool_io and nothing crashed. Needs root (losetup, mount,
// mkfs.ext4, python3 for the ioctl).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuditEvent, AuditRecord } from '../../api/src/index.ts';
import { verifyChain } from '../../lib/src/audit/chain.ts';
import { AuditError } from '../../lib/src/audit/errors.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';

const pod = { namespace: 'agents', name: 'agent-power-loss' };
const rec = (i: number): AuditRecord => ({
  kind: i % 2 ? 'response' : 'request',
  pod,
  request_id: `r-${i >> 1}`,
  request: { method: 'POST', scheme: 'https', host: 'api.openai.com', port: 443, path: `/v1/chat/completions/${i}` },
  decision: { action: 'allow', code: 'llm.allowed', reason: 'LLM APIs are allowed with DLP' },
  bytes: { in: 100 + i, out: 2000 + i },
});

const sh = (cmd: string, args: string[]): string => {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (needs root, losetup, mkfs.ext4, python3): ${res.stderr}`);
  return res.stdout.trim();
};

/** Every event in the spool's segment files, in file order. */
function spooled(dir: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const name of readdirSync(dir).filter((n) => n.startsWith('seg-')).sort()) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) if (line) out.push(JSON.parse(line) as AuditEvent);
  }
  return out;
}

describe('group commit under power loss (ext4 shut down mid-batch)', () => {
  let base: string;
  let mountPoint: string;
  let loopDev = '';
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'sluice-power-loss-'));
    const image = join(base, 'disk.img');
    mountPoint = join(base, 'mnt');
    mkdirSync(mountPoint);
    sh('truncate', ['-s', '64M', image]);
    loopDev = sh('losetup', ['-f', '--show', image]);
    sh('mkfs.ext4', ['-q', loopDev]);
    sh('mount', [loopDev, mountPoint]);
  });
  afterAll(() => {
    spawnSync('umount', [mountPoint]);
    if (loopDev) spawnSync('losetup', ['-d', loopDev]);
    rmSync(base, { recursive: true, force: true });
  });

  it('every event a record() resolved with survives; those in flight fail closed; the chain verifies', async () => {
    const spoolDir = join(mountPoint, 'spool');
    // Small segments so the run rotates (seal, zero-fill of the next) several times before the cut.
    const config = { spoolDir, pod, session: 'power-loss', spool: { segmentBytes: 192 * 1024, fsync: 'always' as const } };
    const recorder = new AuditRecorder(config);
    await recorder.start();
    const acked = new Map<number, string>();
    const refused: unknown[] = [];
    let next = 0;
    let shutDown = false;
    const SHUTDOWN_AFTER = 3000;
    // 24 records in flight at all times, as a proxy with 24 busy connections has.
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        try {
          const ev = await recorder.record(rec(i));
          acked.set(ev!.seq, ev!.hash);
        } catch (err) {
          refused.push(err);
          return;
        }
        if (acked.size >= SHUTDOWN_AFTER && !shutDown) {
          shutDown = true;
          // The disk dies now, with the other workers' records queued or being written.
          sh('python3', ['-c', `import os,fcntl,struct; fd=os.open(${JSON.stringify(mountPoint)}, os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 2))`]);
        }
      }
    };
    await Promise.all(Array.from({ length: 24 }, worker));
    expect(shutDown).toBe(true);
    // Records were in flight when the disk died, and each of them failed closed.
    expect(refused.length).toBe(24);
    for (const err of refused) expect(err).toMatchObject({ code: 'audit.spool_io', errno: 'EIO' });
    expect(refused[0]).toBeInstanceOf(AuditError);
    await recorder.stop({ drainTimeoutMs: 100 });

    sh('umount', [mountPoint]);
    sh('mount', [loopDev, mountPoint]);
    const restarted = new AuditRecorder(config);
    const info = await restarted.start();
    expect(info).toMatchObject({ session: 'power-loss', resumed: true });
    await restarted.stop();

    const events = spooled(spoolDir);
    const bySeq = new Map(events.map((e) => [e.seq, e.hash]));
    const lost = [...acked].filter(([seq, hash]) => bySeq.get(seq) !== hash).map(([seq]) => seq);
    expect(lost).toEqual([]);
    expect(acked.size).toBeGreaterThanOrEqual(SHUTDOWN_AFTER);
    // The restart resumed after the last acknowledged event and the whole chain verifies.
    expect(info.seq).toBeGreaterThan(Math.max(...acked.keys()));
    expect(verifyChain(events, { requireEnd: true })).toMatchObject({ ok: true, duplicates: 0 });
    // Several segments were sealed on the way (each cut to its lines: no zeros at rest).
    const segs = readdirSync(spoolDir).filter((n) => n.startsWith('seg-'));
    expect(segs.length).toBeGreaterThan(2);
    for (const s of segs) expect(readFileSync(join(spoolDir, s)).includes(0)).toBe(false);
  }, 180_000);
});
