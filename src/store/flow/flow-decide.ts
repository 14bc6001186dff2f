import type { DebounceRule, RateLimitRule, ThrottleRule } from '../../core/flow-control.js';

// The decisions of the flow rules, pure: the state of one bucket in, its next state and the run's slot out.

/** The stored state of one bucket (pipeline, rule, key); a new bucket is all zeros and no run. */
export interface BucketState {
  /** rate_limit: start of the current window, epoch ms. */
  windowStart: number;
  /** rate_limit: starts given since `windowStart`. debounce: requests the pending run absorbed. */
  count: number;
  /** throttle: the earliest start of the next run, epoch ms. */
  nextAt: number;
  /** debounce: first request of the pending run's burst, epoch ms. */
  firstAt: number;
  /** debounce: the pending run. singleton: the latest run of the key. */
  runId: string | null;
}

export const EMPTY_BUCKET: Readonly<BucketState> = { windowStart: 0, count: 0, nextAt: 0, firstAt: 0, runId: null };

/**
 * rate_limit over fixed windows of `periodMs` starting at the first start after a quiet window. The n-th start
 * since `windowStart` belongs to window floor(n / limit). refuse: a start beyond the current window's room is
 * refused until that window ends. queue: it takes the next window with room (its start time is that window's
 * start). Once every window given out has passed, the count starts over at `at`.
 */
export function rateLimitSlot(bucket: BucketState, rule: RateLimitRule, at: number): { runAt: number; state: BucketState; refuseForMs: number | null } {
  const window = Math.floor(bucket.count / rule.limit);
  const fresh = bucket.count === 0 || at >= bucket.windowStart + (window + 1) * rule.periodMs;
  if (fresh) return { runAt: at, state: { ...bucket, windowStart: at, count: 1 }, refuseForMs: null };
  const windowAt = bucket.windowStart + window * rule.periodMs;
  if (rule.mode === 'refuse' && windowAt > at) {
    // Only the current window (the one `at` is in) admits starts; its room is spent.
    return { runAt: at, state: bucket, refuseForMs: windowAt - at };
  }
  return { runAt: Math.max(at, windowAt), state: { ...bucket, count: bucket.count + 1 }, refuseForMs: null };
}

/** throttle: one start every ceil(periodMs / limit) ms; a start before the next slot takes that slot. */
export function throttleSlot(bucket: BucketState, rule: ThrottleRule, at: number): { runAt: number; state: BucketState } {
  const spacing = Math.ceil(rule.periodMs / rule.limit);
  const runAt = Math.max(at, bucket.nextAt);
  return { runAt, state: { ...bucket, nextAt: runAt + spacing } };
}

/**
 * debounce: while the bucket's pending run has not started, a request joins it (absorbInto) and moves its start
 * to `periodMs` after now, but never past `maxWaitMs` after the burst's first request. Otherwise a new run is due.
 * The driver confirms the pending run has not started before it absorbs.
 */
export function debounceSlot(bucket: BucketState, rule: DebounceRule, now: number): { absorbInto: string | null; runAt: number; state: BucketState } {
  if (bucket.runId === null) return { absorbInto: null, runAt: now + rule.periodMs, state: bucket };
  const runAt = Math.min(now + rule.periodMs, rule.maxWaitMs === null ? Infinity : bucket.firstAt + rule.maxWaitMs);
  return { absorbInto: bucket.runId, runAt, state: { ...bucket, count: bucket.count + 1 } };
}
