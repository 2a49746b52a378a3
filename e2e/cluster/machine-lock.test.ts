// The real-node harness's machine-wide lock (machine-lock.ts): a second holder waits until the first
// releases, a lock held past the timeout is an error naming it, and a holder that dies without
// releasing (a crashed or killed test run) leaves no stale lock. No root and no node needed.
import { describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireMachineLock } from './machine-lock.ts';

const lockFile = () => join(mkdtempSync(join(tmpdir(), 'sluice-lock-')), 'node.lock');

describe('the real-node harness lock', () => {
  test('a second node waits for the first one to release, then gets the lock', async () => {
    const path = lockFile();
    const first = await acquireMachineLock(path);
    let waited = false;
    let secondHeld = false;
    const second = acquireMachineLock(path, { onWait: () => (waited = true) }).then((l) => {
      secondHeld = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 600));
    expect([waited, secondHeld]).toEqual([true, false]);
    first.release();
    first.release(); // idempotent
    const lock = await second;
    expect(lock.waitedMs).toBeGreaterThanOrEqual(500);
    lock.release();
  });

  test('a lock held past the timeout is an error, not a second node', async () => {
    const path = lockFile();
    const first = await acquireMachineLock(path);
    try {
      await expect(acquireMachineLock(path, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'SLUICE_NODE_LOCK', message: expect.stringContaining(`held ${path} for more than 1 s`) });
    } finally {
      first.release();
    }
  });

  test('a holder killed without releasing (a crashed run) frees the lock', async () => {
    const path = lockFile();
    const script = `import { acquireMachineLock } from ${JSON.stringify(join(import.meta.dirname, 'machine-lock.ts'))};\nawait acquireMachineLock(${JSON.stringify(path)});\nconsole.log('held');\nsetInterval(() => {}, 1000);\n`;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve()));
    await expect(acquireMachineLock(path, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'SLUICE_NODE_LOCK' });
    holder.kill('SIGKILL');
    const lock = await acquireMachineLock(path, { timeoutMs: 10_000 });
    lock.release();
  });
});
