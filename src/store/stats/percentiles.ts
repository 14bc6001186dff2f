import type { DurationStats } from '../store.js';

/** One row of a duration histogram: `n` values equal to `ms` in the group `key`, rows sorted by (key, ms). */
export interface HistogramRow {
  key: string | number;
  ms: number | string;
  n: number | string;
}

const PERCENTILES = [50, 95, 99] as const;

/** The nearest rank (1-based) of percentile `p` among `count` values, as `durationStats` takes it. */
export function nearestRank(p: number, count: number): number {
  return Math.min(count, Math.max(1, Math.ceil((p / 100) * count)));
}

/**
 * Nearest-rank p50/p95/p99 of every group of a sorted histogram, walked once: memory holds one group's ranks,
 * never the values. `counts` gives each group's number of values (rows past it are ignored).
 */
export function percentilesOf(rows: Iterable<HistogramRow>, counts: ReadonlyMap<string | number, number>): Map<string | number, DurationStats> {
  const out = new Map<string | number, DurationStats>();
  let key: string | number | undefined;
  let seen = 0;
  let found: number[] = [];
  let current: DurationStats | undefined;
  for (const row of rows) {
    if (row.key !== key || current === undefined) {
      key = row.key;
      seen = 0;
      found = [];
      current = { count: counts.get(key) ?? 0, p50: null, p95: null, p99: null };
      out.set(key, current);
    }
    seen += Number(row.n);
    while (found.length < PERCENTILES.length && seen >= nearestRank(PERCENTILES[found.length]!, current.count)) found.push(Number(row.ms));
    Object.assign(current, { p50: found[0] ?? null, p95: found[1] ?? null, p99: found[2] ?? null });
  }
  return out;
}

/** The stats of a group with no finished values. */
export function noDurations(count = 0): DurationStats {
  return { count, p50: null, p95: null, p99: null };
}
