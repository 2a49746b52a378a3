// A machine-wide exclusive lock for the real-node harness (node.ts): a node saves and restores the
// kubelet's sysctls, owns /run/containerd and needs the machine's CPU, so two nodes must never run
// at once on one machine — not even from two jest workers of one `make test`. The second start
// waits here until the first node's teardown released the lock.
// The lock is flock(2) on a file, held by a child `flock` process whose stdin is a pipe from this
// process: it dies with us (the pipe closes, its command exits, flock exits, the kernel drops the
// lock), so a crashed or killed test run never leaves a stale lock behind, and there is no pid to
// check. It must never be taken on the file the test runner's outer `flock` holds (that would wait
// for itself): the default path is its own.
import { spawn } from 'node:child_process';

/** Where the real-node harness takes its lock (/run: root's, tmpfs, gone after a reboot). */
export const NODE_HARNESS_LOCK = '/run/sluice-e2e-node.lock';

export interface MachineLock {
  readonly path: string;
  /** how long the start waited for another holder */
  readonly waitedMs: number;
  /** Drops the lock; synchronous (it also runs from process 'exit' handlers) and idempotent. */
  release(): void;
}

export class MachineLockError extends Error {
  readonly code = 'SLUICE_NODE_LOCK';
  constructor(message: string) {
    super(message);
    this.name = 'MachineLockError';
  }
}

/**
 * Takes the exclusive lock on `path`, waiting at most `timeoutMs` for the current holder; `onWait`
 * is called once when the lock is held by someone else (so a waiting run says why it waits).
 */
export function acquireMachineLock(path: string = NODE_HARNESS_LOCK, opts: { timeoutMs?: number; onWait?: () => void } = {}): Promise<MachineLock> {
  const timeoutS = Math.max(1, Math.ceil((opts.timeoutMs ?? 30 * 60_000) / 1000));
  const started = performance.now();
  // --close: the command does not inherit the lock's fd, so only the flock process holds it and
  // killing that one process releases it. The command waits for end of input: our end of the pipe.
  const child = spawn('flock', ['--exclusive', '--close', '--timeout', String(timeoutS), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    child.stdin?.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // No 'exit' listener of its own: at exit the lock must outlive the node's teardown, and the
  // process's death closes the pipe, which releases it.
  return new Promise<MachineLock>((resolve, reject) => {
    let stderr = '';
    let held = false;
    // Someone else holds it when flock has not answered at once: say so once.
    const waitNote = setTimeout(() => opts.onWait?.(), 200);
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      if (held || !d.toString().includes('locked')) return;
      held = true;
      clearTimeout(waitNote);
      // Held: nothing of the child keeps this process alive (release() still reaches it).
      child.unref();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      resolve({ path, waitedMs: performance.now() - started, release });
    });
    child.once('error', (err) => {
      clearTimeout(waitNote);
      release();
      reject(new MachineLockError(`cannot run flock for ${path}: ${err.message} (util-linux flock is needed)`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(waitNote);
      if (held) return;
      release();
      reject(new MachineLockError(code === 1 ? `another real node held ${path} for more than ${timeoutS} s` : `flock on ${path} ended (${signal ?? code}) before taking the lock: ${stderr.trim()}`));
    });
  });
}
