// Keeps the engine on the newest good bundle. A mounted ConfigMap updates by swapping its
// `..data` symlink, so the watcher follows real paths and compares a fingerprint (inode, size,
// mtime of each file) rather than trusting one kind of fs event; fs.watch makes it prompt and a
// slow poll makes it certain. A bad bundle — or, with a signing key configured, an unsigned or
// tampered one — is reported and the last good one stays in service.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BundleError, readBundle } from '../../../lib/src/policy/bundle.ts';
import type { BundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import { compileBundle } from '../../../lib/src/policy/engine.ts';
import type { LoadedBundle, PolicyEngine } from '../../../lib/src/policy/engine.ts';

export interface BundleWatcherEvents {
  loaded(meta: LoadedBundle): void;
  failed(error: BundleError): void;
}

export interface BundleWatcherOptions {
  pollIntervalMs: number;
  /** Only bundles signed by this key load (policy.verification in the sidecar config). */
  verification?: BundleVerification | undefined;
}

async function fingerprint(path: string): Promise<string> {
  const parts: string[] = [];
  let info;
  try {
    info = await stat(path);
  } catch {
    return 'missing';
  }
  const files = info.isDirectory() ? ['policy.wasm', 'data.json', '.manifest', '.signatures.json', 'bundle.tar.gz'].map((f) => join(path, f)) : [path];
  for (const file of files) {
    try {
      const real = await realpath(file);
      const s = await stat(real);
      parts.push(`${real}:${s.ino}:${s.size}:${s.mtimeMs}`);
    } catch {
      parts.push(`${file}:absent`);
    }
  }
  return parts.join('|');
}

export class BundleWatcher {
  readonly #path: string;
  readonly #engine: PolicyEngine;
  readonly #events: BundleWatcherEvents;
  readonly #options: BundleWatcherOptions;
  #lastPrint = '';
  #running: Promise<void> | undefined;
  #again = false;
  #fsWatcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(path: string, engine: PolicyEngine, events: BundleWatcherEvents, options: BundleWatcherOptions) {
    this.#path = path;
    this.#engine = engine;
    this.#events = events;
    this.#options = options;
  }

  /** Loads once (reporting failure, never throwing) and then follows changes. */
  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.#options.pollIntervalMs);
    this.#timer.unref();
    try {
      const watched = (await stat(this.#path).catch(() => undefined))?.isDirectory() ? this.#path : dirname(this.#path);
      this.#fsWatcher = watch(watched, { persistent: false }, () => void this.check());
      this.#fsWatcher.on('error', () => undefined); // the poll still covers us
    } catch {
      // Directory not there yet (ConfigMap not mounted): the poll picks it up when it appears.
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#fsWatcher?.close();
  }

  /** Reloads when the files changed; concurrent calls coalesce into one more pass. */
  check(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce();
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #checkOnce(): Promise<void> {
    const print = await fingerprint(this.#path);
    if (print === this.#lastPrint) return;
    this.#lastPrint = print;
    try {
      const compiled = await compileBundle(await readBundle(this.#path, { verification: this.#options.verification }));
      this.#engine.install(compiled);
      this.#events.loaded(compiled.meta);
    } catch (err) {
      const error = err instanceof BundleError ? err : new BundleError('bundle.unreadable', `${this.#path}: ${String(err)}`);
      this.#events.failed(error);
    }
  }
}
