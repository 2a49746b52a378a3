// The fake-IP table behind the pod's DNS: each name the agent resolves gets a synthetic IPv4
// (and IPv6) address from a reserved block, and the proxy maps a redirected connection's
// address back to that name. Bounded (LRU with an idle TTL); a name keeps its addresses while
// it is mapped, and a freed address is reused only after the allocator has gone round the whole
// block, long after any client's cached answer (answer TTL ≪ entry TTL) has expired. It must
// never resolve anything for real and never hand one address to two live names.
// The `dns` settings' schema is shared with the interception rules (they route its ranges locally).
import { FakeIpConfig } from '../../../lib/src/interception/settings.ts';
import type { FakeIpConfigInput } from '../../../lib/src/interception/settings.ts';
import { IpPoolError, ipv4Pool, ipv6Pool } from './ip-pool.ts';
import type { IpPool } from './ip-pool.ts';

export interface FakeAddresses {
  ipv4: string;
  ipv6?: string;
}

interface Entry {
  name: string;
  v4: number;
  v6: number;
  /** Formatted once: answering is the hot path. */
  ipv4: string;
  ipv6: string | undefined;
  touched: number;
  /** Recency list: older toward head, newer toward tail. */
  older: Entry | undefined;
  newer: Entry | undefined;
}

/** Index allocator over a pool: hands out the next free slot after the last one given. */
class SlotCursor {
  readonly pool: IpPool;
  readonly used = new Map<number, Entry>();
  #next = 0;
  constructor(pool: IpPool) {
    this.pool = pool;
  }
  take(entry: Entry): number {
    // Terminates: the map never holds more than capacity < pool.size entries.
    while (this.used.has(this.#next)) this.#next = (this.#next + 1) % this.pool.size;
    const slot = this.#next;
    this.#next = (this.#next + 1) % this.pool.size;
    this.used.set(slot, entry);
    return slot;
  }
}

/** Prefixes a pool error with the config field it came from. */
function named(field: string, make: () => IpPool): IpPool {
  try {
    return make();
  } catch (err) {
    if (err instanceof IpPoolError) throw new IpPoolError(`${field}: ${err.message}`);
    throw err;
  }
}

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

export class FakeIpMap {
  readonly config: FakeIpConfig;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #byName = new Map<string, Entry>();
  // A linked list, not Map re-insertion: V8 leaves holes where entries were deleted and
  // iterating from the front of a churned Map walks all of them.
  #oldest: Entry | undefined;
  #newest: Entry | undefined;
  readonly #v4: SlotCursor;
  readonly #v6: SlotCursor | undefined;
  #evictions = 0;

  constructor(config: FakeIpConfigInput = {}, now: () => number = Date.now) {
    this.config = Object.freeze(FakeIpConfig.parse(config));
    this.#now = now;
    this.#ttlMs = this.config.entryTtlSeconds * 1000;
    const v4 = named('ipv4Cidr', () => ipv4Pool(this.config.ipv4Cidr));
    if (this.config.capacity >= v4.size) throw new RangeError(`capacity ${this.config.capacity} must be smaller than the ${v4.size} addresses of ipv4Cidr ${v4.cidr}`);
    this.#v4 = new SlotCursor(v4);
    if (this.config.ipv6Cidr !== null) {
      const cidr = this.config.ipv6Cidr;
      const v6 = named('ipv6Cidr', () => ipv6Pool(cidr));
      if (this.config.capacity >= v6.size) throw new RangeError(`capacity ${this.config.capacity} must be smaller than the ${v6.size} addresses of ipv6Cidr ${v6.cidr}`);
      this.#v6 = new SlotCursor(v6);
    }
  }

  get size(): number {
    return this.#byName.size;
  }

  /** Mappings dropped so far because the table was full (not counting idle expiry). */
  get evictions(): number {
    return this.#evictions;
  }

  get answerTtlSeconds(): number {
    return this.config.answerTtlSeconds;
  }

  get hasIpv6(): boolean {
    return this.#v6 !== undefined;
  }

  /** The addresses of `name` (a validated, lower-case DNS name), mapping it if it is new. */
  addressesFor(name: string): FakeAddresses {
    const now = this.#now();
    let entry = this.#byName.get(name);
    if (entry && now - entry.touched > this.#ttlMs) {
      this.#drop(entry);
      entry = undefined;
    }
    if (entry) {
      this.#touch(entry, now);
    } else {
      this.#expire(now);
      if (this.#byName.size >= this.config.capacity && this.#oldest) {
        this.#drop(this.#oldest);
        this.#evictions++;
      }
      entry = { name, v4: -1, v6: -1, ipv4: '', ipv6: undefined, touched: now, older: undefined, newer: undefined };
      entry.v4 = this.#v4.take(entry);
      entry.ipv4 = this.#v4.pool.at(entry.v4);
      if (this.#v6) {
        entry.v6 = this.#v6.take(entry);
        entry.ipv6 = this.#v6.pool.at(entry.v6);
      }
      this.#byName.set(name, entry);
      this.#append(entry);
    }
    const out: FakeAddresses = { ipv4: entry.ipv4 };
    if (entry.ipv6 !== undefined) out.ipv6 = entry.ipv6;
    return out;
  }

  /** True when `address` lies in one of the synthetic blocks (mapped or not). */
  isFakeIp(address: string): boolean {
    const v4 = V4_MAPPED.exec(address)?.[1] ?? address;
    return this.#v4.pool.indexOf(v4) !== undefined || this.#v6?.pool.indexOf(address) !== undefined;
  }

  /**
   * The name a synthetic address stands for, or undefined when it is not (or no longer) mapped.
   * Accepts IPv4-mapped IPv6 (`::ffff:198.18.0.1`) as dual-stack sockets report it. A lookup
   * keeps the mapping alive, as a connection in use should.
   */
  lookupFakeIp(address: string): string | undefined {
    const mapped = V4_MAPPED.exec(address)?.[1];
    let entry: Entry | undefined;
    const i4 = this.#v4.pool.indexOf(mapped ?? address);
    if (i4 !== undefined) entry = this.#v4.used.get(i4);
    else if (this.#v6 && mapped === undefined) {
      const i6 = this.#v6.pool.indexOf(address);
      if (i6 !== undefined) entry = this.#v6.used.get(i6);
    }
    if (!entry) return undefined;
    const now = this.#now();
    if (now - entry.touched > this.#ttlMs) {
      this.#drop(entry);
      return undefined;
    }
    this.#touch(entry, now);
    return entry.name;
  }

  #touch(entry: Entry, now: number): void {
    entry.touched = now;
    if (entry === this.#newest) return;
    this.#unlink(entry);
    this.#append(entry);
  }

  #append(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest) this.#newest.newer = entry;
    else this.#oldest = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.#newest = entry.older;
    entry.older = entry.newer = undefined;
  }

  #drop(entry: Entry): void {
    this.#unlink(entry);
    this.#byName.delete(entry.name);
    this.#v4.used.delete(entry.v4);
    this.#v6?.used.delete(entry.v6);
  }

  /** Drops idle entries from the old end; recency order makes this stop at the first live one. */
  #expire(now: number): void {
    while (this.#oldest && now - this.#oldest.touched > this.#ttlMs) this.#drop(this.#oldest);
  }
}
