import type { DurationStats } from '../store.js';

/** The nearest rank (1-based) of percentile `p` among `count` values, as `durationStats` takes it. */
export function nearestRank(p: number, count: number): number {
  return Math.min(count, Math.max(1, Math.ceil((p / 100) * count)));
}

/** The stats of a group with no finished values. */
export function noDurations(count = 0): DurationStats {
  return { count, p50: null, p95: null, p99: null };
}
