// Issued credentials kept per (provider, audience, role) until shortly before they expire, so a
// burst of requests costs one issuance: concurrent misses share one in-flight call (single
// flight), a credential close to expiry is refreshed in the background while the old one is still
// served (refresh ahead), and after a failure callers fail fast for a short back-off instead of
// hammering a provider that is down. Pure logic over an injected clock; it never logs and never
// exposes a value except to the caller that asked for it.
import { CredentialError } from './errors.ts';

export interface CacheKey {
  provider: string;
  audience: string;
  role: string;
}

export interface Issued<T> {
  value: T;
  /** ms since the epoch */
  expiresAt: number;
}

export interface CacheOptions {
  now: () => number;
  refreshBeforeMs: number;
  minRemainingMs: number;
  failureBackoffMs: number;
  maxEntries: number;
  /** Per lookup, for metrics: hit (served from cache, maybe refreshing), miss (waited for an issuance). */
  onLookup?: (provider: string, result: 'hit' | 'miss') => void;
  /** An issuance finished: how long it took and when the credential expires. */
  onIssued?: (key: CacheKey, seconds: number, expiresAt: number) => void;
  onError?: (key: CacheKey, err: unknown) => void;
}

interface Entry<T> {
  key: CacheKey;
  value?: Issued<T>;
  /** after this the value is refreshed in the background */
  refreshAt: number;
  /** after this the value is not handed out */
  usableUntil: number;
  inflight?: Promise<Issued<T>>;
  failedAt?: number;
  failure?: unknown;
}

export interface Lookup<T> {
  value: T;
  expiresAt: number;
  cached: boolean;
}

export function cacheKeyString(k: CacheKey): string {
  return `${k.provider}\u0000${k.audience}\u0000${k.role}`;
}

export class CredentialCache {
  readonly #o: CacheOptions;
  readonly #entries = new Map<string, Entry<unknown>>();

  constructor(options: CacheOptions) {
    this.#o = options;
  }

  /**
   * The cached credential for `key`, or a fresh one from `issue` (one call at a time per key).
   * Rejects with the provider's error when no usable credential can be had.
   */
  async get<T>(key: CacheKey, issue: () => Promise<Issued<T>>): Promise<Lookup<T>> {
    const id = cacheKeyString(key);
    const now = this.#o.now();
    let entry = this.#entries.get(id) as Entry<T> | undefined;
    if (entry?.value && now < entry.usableUntil) {
      if (now >= entry.refreshAt && !entry.inflight && !this.#backingOff(entry, now)) this.#start(entry, issue).catch(() => undefined);
      this.#o.onLookup?.(key.provider, 'hit');
      return { value: entry.value.value, expiresAt: entry.value.expiresAt, cached: true };
    }
    this.#o.onLookup?.(key.provider, 'miss');
    if (!entry) {
      this.#makeRoom();
      entry = { key, refreshAt: 0, usableUntil: 0 };
      this.#entries.set(id, entry);
    }
    if (!entry.inflight && this.#backingOff(entry, now)) throw entry.failure;
    const issued = await (entry.inflight ?? this.#start(entry, issue));
    return { value: issued.value, expiresAt: issued.expiresAt, cached: false };
  }

  #backingOff(entry: Entry<unknown>, now: number): boolean {
    return entry.failedAt !== undefined && now - entry.failedAt < this.#o.failureBackoffMs;
  }

  #start<T>(entry: Entry<T>, issue: () => Promise<Issued<T>>): Promise<Issued<T>> {
    const started = this.#o.now();
    const p = (async () => {
      try {
        const issued = await issue();
        // An already-expired credential (clock skew, a bad expiry) would be re-issued on every
        // request and fail upstream: a provider error instead, with its back-off.
        if (issued.expiresAt <= this.#o.now()) {
          throw new CredentialError('credentials.provider_rejected', entry.key.provider, `${entry.key.provider} issued a credential that had already expired (${new Date(issued.expiresAt).toISOString()})`);
        }
        const lifetime = Math.max(0, issued.expiresAt - started);
        entry.value = issued;
        // Short-lived credentials refresh at half-life and stay usable for three quarters of it.
        entry.refreshAt = issued.expiresAt - Math.min(this.#o.refreshBeforeMs, lifetime / 2);
        entry.usableUntil = issued.expiresAt - Math.min(this.#o.minRemainingMs, lifetime / 4);
        entry.failedAt = undefined;
        entry.failure = undefined;
        this.#o.onIssued?.(entry.key, (this.#o.now() - started) / 1000, issued.expiresAt);
        return issued;
      } catch (err) {
        entry.failedAt = this.#o.now();
        entry.failure = err;
        this.#o.onError?.(entry.key, err);
        throw err;
      } finally {
        entry.inflight = undefined;
      }
    })();
    entry.inflight = p;
    return p;
  }

  /** Keeps the map bounded before a new entry: drops those that expire first (never one being issued). */
  #makeRoom(): void {
    const excess = this.#entries.size - this.#o.maxEntries + 1;
    if (excess <= 0) return;
    const victims = [...this.#entries.entries()]
      .filter(([, e]) => !e.inflight)
      .sort(([, a], [, b]) => (a.value?.expiresAt ?? 0) - (b.value?.expiresAt ?? 0));
    for (const [id] of victims.slice(0, excess)) this.#entries.delete(id);
  }

  /** Seconds until the soonest-expiring usable credential of each provider expires (metrics). */
  secondsToExpiry(): Map<string, number> {
    const now = this.#o.now();
    const out = new Map<string, number>();
    for (const e of this.#entries.values()) {
      if (!e.value) continue;
      const s = Math.max(0, (e.value.expiresAt - now) / 1000);
      const prev = out.get(e.key.provider);
      if (prev === undefined || s < prev) out.set(e.key.provider, s);
    }
    return out;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Drops every credential (kill switch, shutdown): later requests issue anew. */
  clear(): void {
    this.#entries.clear();
  }
}
