// Remembers the policy's decision for the parts of an input the policy reads (input-reads.ts), so
// that an input identical in all of them is answered without running the WASM again: the policy
// is a function of those parts, its data and its builtins, and only a policy whose builtins are
// all pure gets a cache. The key is the very JSON text the module is given for each top-level
// part of the input (request, facts, pod, session) the policy reads anything under (the pod's by a
// number the engine keeps for each distinct pod text, never reused) — a part it
// never reads (the session, for the default policy: a new seq every request) is left out — so two
// inputs share a key only when the module would read the same bytes. Keying whole parts is coarser
// than the read paths, never finer. It must never answer for an input that differs in a read part,
// and must be emptied whenever the data changes (the engine clears it on every bundle, data and
// organisation swap). Bounded in entries and in bytes per entry: an agent that sends a new URL each
// time only makes it miss.
import type { Decision } from '../../../api/src/index.ts';
import type { InputPath } from './input-reads.ts';

/** Builtins the module may import from the host and still be a pure function of input and data. */
export const PURE_BUILTINS: ReadonlySet<string> = new Set(['json.is_valid', 'sprintf', 'regex.split', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal']);

const MAX_ENTRIES = 2048;
// An input whose read parts serialise longer than this (big headers, a long URL) is evaluated
// every time rather than kept: with the 4 KiB bound on a kept decision this bounds the cache to
// about 2048 × 8 KiB × 2 bytes.
export const MAX_KEY_CHARS = 4096;

export interface DecisionCacheStats {
  hits: number;
  misses: number;
  entries: number;
}

/** The top-level parts of the input the engine serialises (in this order); the module sees nothing else. */
export const INPUT_PARTS = ['request', 'facts', 'pod', 'session'] as const;
export type InputPart = (typeof INPUT_PARTS)[number];

export class DecisionCache {
  /** The parts a key is made of: every part some read path starts with. */
  readonly parts: readonly InputPart[];
  /**
   * key → the validated decision (never handed out: the engine returns copies) and when it was last
   * put at the end, least recently used first: past the bound the first goes. A hit moves its entry
   * to the end only once it has fallen into the older half (moving on every hit cost a fifth of a
   * hit), so inputs that repeat stay while one-off inputs (a new tarball, a growing prompt) pass through.
   */
  readonly #entries = new Map<string, { decision: Decision; stamp: number }>();
  #stamp = 0;
  #hits = 0;
  #misses = 0;

  constructor(paths: readonly InputPath[]) {
    this.parts = INPUT_PARTS.filter((part) => paths.some((p) => p[0] === part));
  }

  /**
   * The key of an input from the JSON text of each part (exactly as given to the module) that is in
   * `parts`, or undefined (counted as a miss) when it is too long to keep: then evaluate without the cache. JSON.stringify
   * never writes a raw newline, so joined by one the texts have one reading.
   */
  keyOf(json: Readonly<Record<InputPart, string>>): string | undefined {
    let key = '';
    for (const part of this.parts) key += `${json[part]}\n`;
    if (key.length <= MAX_KEY_CHARS) return key;
    this.#misses++;
    return undefined;
  }

  get(key: string): Decision | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    if (this.#stamp - hit.stamp > MAX_ENTRIES / 2) {
      this.#entries.delete(key);
      hit.stamp = ++this.#stamp;
      this.#entries.set(key, hit);
    }
    return hit.decision;
  }

  set(key: string, decision: Decision): void {
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { decision, stamp: ++this.#stamp });
  }

  /** Forgets every decision: the policy's data changed. */
  clear(): void {
    this.#entries.clear();
  }

  get stats(): DecisionCacheStats {
    return { hits: this.#hits, misses: this.#misses, entries: this.#entries.size };
  }
}
