// The audit spool's health as one of four states, from what the spool measures of itself: ok,
// behind (the store has not acknowledged events for a while), near full (80 % of maxBytes) and full
// (records are being refused or dropped, or the ring of `store: none` is trimming its oldest
// events). Pure: the recorder feeds it numbers and logs every change. Never reads a clock itself.

export const SPOOL_STATES = ['ok', 'behind', 'near_full', 'full'] as const;
export type SpoolState = (typeof SPOOL_STATES)[number];

/** The oldest unacknowledged event is this old: the store is behind (or down). */
export const BEHIND_AFTER_SECONDS = 60;
/** The same ratio SluiceAuditSpoolNearFull alerts on. */
export const NEAR_FULL_RATIO = 0.8;

export interface SpoolMeasures {
  bytes: number;
  capacityBytes: number;
  oldestUnshippedAgeSeconds: number;
  /** A store is configured (with `none` nothing is ever "behind": nothing is shipped). */
  shipping: boolean;
  /** Records are being refused or dropped for room, or the ring is trimming. */
  full: boolean;
}

export function spoolState(m: SpoolMeasures): SpoolState {
  if (m.full) return 'full';
  if (m.capacityBytes > 0 && m.bytes >= m.capacityBytes * NEAR_FULL_RATIO) return 'near_full';
  if (m.shipping && m.oldestUnshippedAgeSeconds >= BEHIND_AFTER_SECONDS) return 'behind';
  return 'ok';
}

/** A worse state is logged as a warning, a better one as information. */
export function isWorse(from: SpoolState, to: SpoolState): boolean {
  return SPOOL_STATES.indexOf(to) > SPOOL_STATES.indexOf(from);
}
