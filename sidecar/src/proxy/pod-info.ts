// The pod as the policy and the audit see it: identity from config, labels and annotations
// from the downward API volume (so the kill switch and the creator stamp are live). Files are
// re-read when they change; a PodIdentity object is replaced, never mutated, so the engine's
// serialisation cache stays valid.
import { readFile } from 'node:fs/promises';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { ANNOTATION_CREATOR, ANNOTATION_KILL, Creator } from '../../../api/src/index.ts';
import type { PodIdentity } from '../../../api/src/index.ts';

/** Parses the downward API's `key="value"` lines (values are Go-quoted strings). */
export function parseDownwardApiFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const raw = line.slice(eq + 1);
    try {
      out[key] = JSON.parse(raw) as string;
    } catch {
      out[key] = raw.replace(/^"|"$/g, '');
    }
  }
  return out;
}

export function creatorFrom(annotations: Record<string, string>): Creator | undefined {
  const raw = annotations[ANNOTATION_CREATOR];
  if (!raw) return undefined;
  try {
    const parsed = Creator.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface PodInfoOptions {
  namespace: string;
  name: string;
  serviceAccount: string;
  dir?: string;
  pollIntervalMs?: number;
}

export class PodInfo {
  #identity: PodIdentity;
  readonly #options: PodInfoOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #listeners: ((identity: PodIdentity) => void)[] = [];

  constructor(options: PodInfoOptions) {
    this.#options = options;
    this.#identity = { namespace: options.namespace, name: options.name, service_account: options.serviceAccount, labels: {}, annotations: {} };
  }

  get identity(): PodIdentity {
    return this.#identity;
  }

  get killed(): boolean {
    return this.#identity.annotations[ANNOTATION_KILL] === 'true';
  }

  onChange(listener: (identity: PodIdentity) => void): void {
    this.#listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.refresh();
    const dir = this.#options.dir;
    if (!dir) return;
    try {
      this.#watcher = watch(dir, { persistent: false }, () => void this.refresh());
      this.#watcher.on('error', () => undefined);
    } catch {
      // not mounted (yet): the poll covers it
    }
    this.#timer = setInterval(() => void this.refresh(), this.#options.pollIntervalMs ?? 500);
    this.#timer.unref();
  }

  stop(): void {
    this.#watcher?.close();
    if (this.#timer) clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    const dir = this.#options.dir;
    if (!dir) return;
    const read = async (f: string) => parseDownwardApiFile(await readFile(join(dir, f), 'utf8').catch(() => ''));
    const [labels, annotations] = await Promise.all([read('labels'), read('annotations')]);
    const same = JSON.stringify(labels) === JSON.stringify(this.#identity.labels) && JSON.stringify(annotations) === JSON.stringify(this.#identity.annotations);
    if (same) return;
    const creator = creatorFrom(annotations);
    this.#identity = {
      namespace: this.#options.namespace,
      name: this.#options.name,
      service_account: this.#options.serviceAccount,
      labels,
      annotations,
      ...(creator ? { creator } : {}),
    };
    for (const l of this.#listeners) l(this.#identity);
  }
}
