// Rate limits for WebSocket traffic, pure: a token bucket (a second's worth of burst, refilled
// continuously) per connection and one shared by every connection of the sidecar, for messages
// and for payload bytes. The relay asks before it carries anything; a refusal closes the
// connection that asked (1008). The clock is passed in, so the arithmetic is testable without
// waiting. It never sleeps or queues: over the rate is refused, not delayed (a delayed flood
// still fills memory and the audit spool).
import type { WebSocketSettings } from './settings.ts';

export class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #at: number;

  /** `perSecond` tokens a second, at most one second's worth held. */
  constructor(perSecond: number, now: number) {
    this.#rate = perSecond;
    this.#tokens = perSecond;
    this.#at = now;
  }

  /** Takes `n` tokens if there are that many now; a request larger than the bucket is refused. */
  take(n: number, now: number): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) * this.#rate) / 1000);
      this.#at = now;
    }
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens are there (0: now). */
  waitMs(n: number, now: number): number {
    const tokens = Math.min(this.#rate, this.#tokens + (Math.max(0, now - this.#at) * this.#rate) / 1000);
    return tokens >= n ? 0 : ((n - tokens) * 1000) / this.#rate;
  }
}

/** A message-and-byte budget. */
export class WsBudget {
  readonly #messages: TokenBucket;
  readonly #bytes: TokenBucket;

  constructor(rate: WebSocketSettings['rate']['connection'], now: number) {
    this.#messages = new TokenBucket(rate.messagesPerSecond, now);
    this.#bytes = new TokenBucket(rate.bytesPerSecond, now);
  }

  /** One message (or control frame) of `bytes` payload: false when it would exceed either rate. */
  take(bytes: number, now: number): boolean {
    // Both are checked before either is spent is not needed: a refusal ends the connection.
    return this.#messages.take(1, now) && this.#bytes.take(bytes, now);
  }
}

/** The sidecar-wide budget: one per settings object (one per gateway), made on first use. */
const sidecarBudgets = new WeakMap<WebSocketSettings, WsBudget>();

export function sidecarBudget(settings: WebSocketSettings, now: number): WsBudget {
  let b = sidecarBudgets.get(settings);
  if (!b) {
    b = new WsBudget(settings.rate.sidecar, now);
    sidecarBudgets.set(settings, b);
  }
  return b;
}
