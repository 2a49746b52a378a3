// Retry timing for pushes to the store: capped exponential back-off with full jitter (a uniform
// draw in [0, min(max, initial·2^attempt)]), so many sidecars recovering from one store outage do
// not retry in lock-step. Pure: the random draw is passed in.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** Delay before retry number `attempt` (0 for the first retry); `random` is uniform in [0, 1). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: number, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.floor(random * ceiling);
  // A server's Retry-After is a floor, still capped so a bad header cannot stall shipping for hours.
  return retryAfterMs === undefined ? jittered : Math.min(policy.maxMs, Math.max(jittered, retryAfterMs));
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(header: string | string[] | undefined, nowMs: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
