// Fault tests of the audit trail against a real log store (VictoriaLogs). Each one asserts that no acknowledged
// event is lost and that the chain read back from the store verifies afterwards (or, for
// tampering, that verify names the damaged seq).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'undici';
import type { AuditEvent, AuditRecord } from '../../api/src/index.ts';
import { runCli } from '../../cli/src/main.ts';
import { verifyChain } from '../../lib/src/audit/chain.ts';
import { AuditError } from '../../lib/src/audit/errors.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { FaultProxy } from '../support/logstore/fault-proxy.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';

const pod = { namespace: 'agents', name: 'agent-faults' };
const rec = (i: number, action: 'allow' | 'deny' = 'allow'): AuditRecord => ({
  kind: 'request',
  pod,
  request_id: `r-${i}`,
  request: { method: 'GET', scheme: 'https', host: 'registry.npmjs.org', port: 443, path: `/left-pad/-/left-pad-${i}.tgz` },
  decision: { action, code: action === 'allow' ? 'registry.read' : 'net.not_allowed', reason: action === 'allow' ? 'read-only registry' : 'destination not allowed' },
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const fastRetry = { lingerMs: 5, retryInitialMs: 20, retryMaxMs: 200 };

let vlogs: VictoriaLogsServer;
beforeAll(async () => {
  vlogs = await VictoriaLogsServer.start();
}, 90_000);
afterAll(async () => {
  await vlogs?.stop();
});

/** Every acknowledged event is in the store with the same hash, and the whole chain verifies. */
function expectNothingLost(stored: AuditEvent[], acked: readonly AuditEvent[] | ReadonlyMap<number, string>, requireEnd = true): void {
  const bySeq = new Map(stored.map((e) => [e.seq, e.hash]));
  const entries: [number, string][] = acked instanceof Map ? [...acked] : (acked as AuditEvent[]).map((e) => [e.seq, e.hash]);
  for (const [seq, hash] of entries) expect(bySeq.get(seq)).toBe(hash);
  expect(verifyChain(stored, { requireEnd })).toMatchObject({ ok: true, duplicates: 0 });
}

describe('audit trail under faults (real store)', () => {
  it('store down for the whole recording, then up: everything arrives', async () => {
    const later = await VictoriaLogsServer.prepare();
    cleanups.push(() => later.stop());
    const recorder = new AuditRecorder({ spoolDir: tempDir('sluice-f-down-'), pod, session: 'f-down', loki: { url: later.pushUrl, ...fastRetry } });
    await recorder.start();
    const acked: AuditEvent[] = [];
    for (let i = 0; i < 500; i += 50) acked.push(...((await Promise.all(Array.from({ length: 50 }, (_, k) => recorder.record(rec(i + k))))) as AuditEvent[]));
    expect(later.running).toBe(false);
    await later.up();
    expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
    const stored = await later.sessionEvents('f-down');
    expect(stored).toHaveLength(502);
    expectNothingLost(stored, acked);
  }, 120_000);

  it('store answering 500, 429 and cutting connections intermittently: nothing lost, nothing doubled', async () => {
    const proxy = await FaultProxy.start(vlogs.pushUrl);
    cleanups.push(() => proxy.close());
    proxy.fault = ({ n }) => {
      if (n % 5 === 0) return { kind: 'status', status: 500 };
      if (n % 5 === 1) return { kind: 'status', status: 429, headers: { 'retry-after': '0' } };
      if (n % 7 === 3) return { kind: 'reset' };
      if (n % 11 === 4) return { kind: 'status', status: 503 };
      return { kind: 'forward' };
    };
    const recorder = new AuditRecorder({ spoolDir: tempDir('sluice-f-flaky-'), pod, session: 'f-flaky', loki: { url: proxy.url, batchMaxEvents: 100, ...fastRetry } });
    await recorder.start();
    const acked: AuditEvent[] = [];
    for (let i = 0; i < 3000; i += 100) acked.push(...((await Promise.all(Array.from({ length: 100 }, (_, k) => recorder.record(rec(i + k))))) as AuditEvent[]));
    expect(await recorder.stop({ drainTimeoutMs: 60_000 })).toEqual({ shipped: true });
    expect(proxy.outcomes).toEqual(expect.arrayContaining([500, 429, 0, 204]));
    const stored = await vlogs.sessionEvents('f-flaky');
    expect(stored).toHaveLength(3002);
    expectNothingLost(stored, acked);
  }, 180_000);

  it('sidecar killed with SIGKILL mid-stream and restarted: resumes the chain, every ack is in the store', async () => {
    const spoolDir = tempDir('sluice-f-kill-');
    const child = join(import.meta.dirname, 'recorder-child.ts');
    const acked = new Map<number, string>();
    const run = (args: string[], onLine: (line: string, kill: () => void) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
      const proc = spawn(process.execPath, [child, '--spool', spoolDir, '--loki', vlogs.pushUrl, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      const kill = (): void => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      };
      cleanups.push(kill);
      createInterface({ input: proc.stdout }).on('line', (line) => onLine(line, kill));
      return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    };
    let firstSession = '';
    const first = run([], (line, kill) => {
      if (line.startsWith('started ')) firstSession = (JSON.parse(line.slice(8)) as { session: string }).session;
      const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
      if (m) acked.set(Number(m[1]), m[2]!);
      // Killed while it keeps recording: appends are in flight at this moment.
      if (acked.size >= 600) kill();
    });
    const firstExit = await first;
    expect(firstExit.signal).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(600);
    const lastAckedBeforeKill = Math.max(...acked.keys());

    let resumed: { session: string; resumed: boolean; seq: number } | undefined;
    let stoppedLine = '';
    const second = await run(['--count', '50'], (line) => {
      if (line.startsWith('started ')) resumed = JSON.parse(line.slice(8)) as typeof resumed;
      if (line.startsWith('stopped ')) stoppedLine = line;
      const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
      if (m) acked.set(Number(m[1]), m[2]!);
    });
    expect(second.code).toBe(0);
    expect(stoppedLine).toBe('stopped true');
    expect(resumed).toMatchObject({ session: firstSession, resumed: true });
    // The resumed chain continues after everything the killed process acknowledged (a write in
    // flight at the kill may have landed too: it is in the chain, just never acknowledged).
    expect(resumed!.seq).toBeGreaterThan(lastAckedBeforeKill);
    const stored = await vlogs.sessionEvents(firstSession);
    expectNothingLost(stored, acked);
    expect(stored.filter((e) => e.kind === 'session_start').map((e) => e.detail?.resumed)).toEqual([false, true]);
  }, 180_000);

  describe('spool directory on a full disk', () => {
    let mountPoint: string;
    beforeAll(() => {
      mountPoint = mkdtempSync(join(tmpdir(), 'sluice-f-tmpfs-'));
      const res = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=384k', 'sluice-audit-test', mountPoint], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`cannot mount a tmpfs for the full-disk test (needs root): ${res.stderr}`);
    });
    afterAll(() => {
      spawnSync('umount', [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    });

    it('fails closed: the agent gets 503 while the disk is full and 200 once shipping frees it; nothing acknowledged is lost', async () => {
      const store = await VictoriaLogsServer.prepare();
      cleanups.push(() => store.stop());
      const spoolDir = join(mountPoint, 'spool');
      mkdirSync(spoolDir);
      // The spool's own bound is far above the disk: the disk (ENOSPC) is what fills first.
      const recorder = new AuditRecorder({
        spoolDir,
        pod,
        session: 'f-full',
        spool: { maxBytes: 64 * 1024 * 1024, segmentBytes: 32 * 1024 },
        loki: { url: store.pushUrl, ...fastRetry },
      });
      await recorder.start();
      cleanups.push(async () => {
        await recorder.stop({ drainTimeoutMs: 100 });
      });
      // The proxy's contract, in miniature: record before answering; a retryable AuditError is a 503.
      const acked: AuditEvent[] = [];
      let n = 0;
      const proxy: Server = createServer((_req, res) => {
        recorder.record(rec(n++)).then(
          (ev) => {
            acked.push(ev!);
            res.writeHead(200).end('ok');
          },
          (err: unknown) => {
            const code = err instanceof AuditError && err.retryable ? 503 : 500;
            res.writeHead(code, { 'x-sluice-reason': err instanceof AuditError ? err.code : 'internal' }).end();
          },
        );
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
      const agent = async (): Promise<{ status: number; reason: string | undefined }> => {
        const res = await request(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`);
        await res.body.dump();
        return { status: res.statusCode, reason: res.headers['x-sluice-reason'] as string | undefined };
      };
      let refused: { status: number; reason: string | undefined } | undefined;
      for (let i = 0; i < 5000 && !refused; i++) {
        const r = await agent();
        if (r.status !== 200) refused = r;
      }
      expect(refused).toEqual({ status: 503, reason: 'audit.spool_io' });
      expect(acked.length).toBeGreaterThan(100);
      // Still closed while nothing can ship.
      expect((await agent()).status).toBe(503);
      await store.up();
      // Once the store has everything, the shipped segments are gone and there is room again.
      expect(await recorder.whenShipped()).toBe(true);
      expect(await agent()).toEqual({ status: 200, reason: undefined });
      expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
      expectNothingLost(await store.sessionEvents('f-full'), acked);
    }, 180_000);
  });

  describe('spool disk failing with EIO', () => {
    // A real ext4 on a loop device; EXT4_IOC_SHUTDOWN (without flushing its journal) makes every
    // later I/O fail with EIO, the way a dying disk does, and drops whatever was not yet durable.
    // Remounting replays the journal: what fdatasync made durable must all be there.
    let image: string;
    let mountPoint: string;
    let loopDev = '';
    const sh = (cmd: string, args: string[]): string => {
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (needs root, losetup, mkfs.ext4, python3): ${res.stderr}`);
      return res.stdout.trim();
    };
    beforeAll(() => {
      const base = mkdtempSync(join(tmpdir(), 'sluice-f-eio-'));
      image = join(base, 'disk.img');
      mountPoint = join(base, 'mnt');
      mkdirSync(mountPoint);
      sh('truncate', ['-s', '32M', image]);
      loopDev = sh('losetup', ['-f', '--show', image]);
      sh('mkfs.ext4', ['-q', loopDev]);
      sh('mount', [loopDev, mountPoint]);
    });
    afterAll(() => {
      spawnSync('umount', [mountPoint]);
      if (loopDev) spawnSync('losetup', ['-d', loopDev]);
      rmSync(join(image, '..'), { recursive: true, force: true });
    });

    it('record() fails closed with audit.spool_io (EIO), nothing crashes, and every acknowledged event survives', async () => {
      const store = await VictoriaLogsServer.prepare();
      cleanups.push(() => store.stop());
      const spoolDir = join(mountPoint, 'spool');
      const config = { spoolDir, pod, session: 'f-eio', spool: { segmentBytes: 64 * 1024 }, loki: { url: store.pushUrl, ...fastRetry } };
      const recorder = new AuditRecorder(config);
      await recorder.start();
      const acked: AuditEvent[] = [];
      for (let i = 0; i < 300; i += 30) acked.push(...((await Promise.all(Array.from({ length: 30 }, (_, k) => recorder.record(rec(i + k))))) as AuditEvent[]));
      // The disk dies: shut the file system down without flushing its journal.
      sh('python3', ['-c', `import os,fcntl,struct; fd=os.open(${JSON.stringify(mountPoint)}, os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 2))`]);
      const refused = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => recorder.record(rec(1000 + i))));
      for (const r of refused) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'audit.spool_io', errno: 'EIO', retryable: true } });
      expect(await recorder.stop({ drainTimeoutMs: 100 })).toEqual({ shipped: false });
      // The disk comes back (journal replayed); a restarted sidecar resumes and ships everything.
      sh('umount', [mountPoint]);
      sh('mount', [loopDev, mountPoint]);
      await store.up();
      const restarted = new AuditRecorder(config);
      expect(await restarted.start()).toMatchObject({ session: 'f-eio', resumed: true });
      expect(await restarted.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
      const stored = await store.sessionEvents('f-eio');
      expectNothingLost(stored, acked);
      expect(stored.some((e) => e.request_id === 'r-1000')).toBe(false);
    }, 180_000);
  });

  describe('tampering in the store', () => {
    async function shipThrough(session: string, rewrite: FaultProxy['fault']): Promise<void> {
      const proxy = await FaultProxy.start(vlogs.pushUrl);
      cleanups.push(() => proxy.close());
      proxy.fault = rewrite;
      const recorder = new AuditRecorder({ spoolDir: tempDir('sluice-f-tamper-'), pod, session, loki: { url: proxy.url, ...fastRetry } });
      await recorder.start();
      for (let i = 0; i < 20; i++) await recorder.record(rec(i, i === 7 ? 'deny' : 'allow'));
      expect(await recorder.stop({ drainTimeoutMs: 30_000 })).toEqual({ shipped: true });
    }

    const verify = async (session: string): Promise<{ code: number; err: string }> => {
      await vlogs.flush();
      let err = '';
      const code = await runCli(['verify', session, '--victorialogs', vlogs.url], { out: () => undefined, err: (s) => (err += s) });
      return { code, err };
    };

    it('an edited event (a deny turned into an allow) is named by verify', async () => {
      await shipThrough('f-edit', () => ({
        kind: 'rewrite',
        rewrite: (streams) =>
          streams.map((s) => ({
            ...s,
            entries: s.entries.map((e) => (e.line.includes('"request_id":"r-7"') ? { ...e, line: e.line.replace('"action":"deny"', '"action":"allow"') } : e)),
          })),
      }));
      const events = await vlogs.sessionEvents('f-edit');
      expect(events.find((e) => e.request_id === 'r-7')!.decision!.action).toBe('allow');
      const { code, err } = await verify('f-edit');
      expect(code).toBe(1);
      expect(err).toContain('chain broken at seq 8: edited');
    }, 60_000);

    it('a deleted event is named by verify as a gap', async () => {
      await shipThrough('f-delete', () => ({
        kind: 'rewrite',
        rewrite: (streams) => streams.map((s) => ({ ...s, entries: s.entries.filter((e) => !e.line.includes('"request_id":"r-7"')) })),
      }));
      const { code, err } = await verify('f-delete');
      expect(code).toBe(1);
      expect(err).toContain('chain broken at seq 8: gap');
    }, 60_000);
  });
});
