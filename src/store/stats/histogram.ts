import type { DurationStats } from '../store.js';
import { nearestRank, noDurations } from './percentiles.js';

/** Durations below this many ms are kept exactly, one histogram bucket per millisecond. */
export const EXACT_BELOW_MS = 256;
/** Growth factor of the log-spaced buckets above `EXACT_BELOW_MS`: each spans 1% of its lower bound. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);

/**
 * The histogram bucket of a duration: the duration itself below 256 ms, else a log-spaced bucket
 * [256·1.01^i, 256·1.01^(i+1)) numbered from 256. Every duration maps to one integer key, so histograms of
 * different minutes add up by key. A negative duration (clocks that disagree) counts as 0 ms.
 */
export function bucketOf(ms: number): number {
  if (ms < EXACT_BELOW_MS) return Math.max(0, Math.round(ms));
  return EXACT_BELOW_MS + Math.floor(Math.log(ms / EXACT_BELOW_MS) / LOG_GROWTH);
}

/**
 * The duration a bucket stands for: exact below 256 ms, else the geometric middle of the bucket, rounded to the
 * millisecond, which is within 0.5% (plus rounding, under 0.2% there) of every duration in the bucket.
 */
export function valueOf(bucket: number): number {
  if (bucket < EXACT_BELOW_MS) return bucket;
  return Math.round(EXACT_BELOW_MS * GROWTH ** (bucket - EXACT_BELOW_MS + 0.5));
}

/**
 * Durations by bucket, dense: a week is bucket 1,308, so an array indexed by bucket stays small and adding
 * histograms up is a walk over numbers.
 */
export class Histogram {
  private counts = new Float64Array(0);
  /** One past the highest bucket used. */
  private size = 0;

  /** Adds `n` durations of bucket `bucket`. */
  add(bucket: number, n: number): void {
    if (bucket >= this.counts.length) this.grow(bucket);
    this.counts[bucket] = this.counts[bucket]! + n;
    if (bucket >= this.size) this.size = bucket + 1;
  }

  private grow(bucket: number): void {
    const next = new Float64Array(Math.max(512, 2 ** Math.ceil(Math.log2(bucket + 1))));
    next.set(this.counts);
    this.counts = next;
  }

  /** Adds every bucket of `from`. */
  merge(from: Histogram): void {
    for (let b = 0; b < from.size; b++) if (from.counts[b] !== 0) this.add(b, from.counts[b]!);
  }

  get empty(): boolean {
    return this.count() === 0;
  }

  /** The number of durations. */
  count(): number {
    let n = 0;
    for (let b = 0; b < this.size; b++) n += this.counts[b]!;
    return n;
  }

  /** Nearest-rank p50/p95/p99 (values within 1% of the exact ones, exact below 256 ms). */
  stats(): DurationStats {
    const count = this.count();
    if (count <= 0) return noDurations(Math.max(0, count));
    const ranks = [50, 95, 99].map((p) => nearestRank(p, count));
    const found: number[] = [];
    let seen = 0;
    for (let b = 0; b < this.size && found.length < ranks.length; b++) {
      seen += this.counts[b]!;
      while (found.length < ranks.length && seen >= ranks[found.length]!) found.push(valueOf(b));
    }
    return { count, p50: found[0] ?? null, p95: found[1] ?? null, p99: found[2] ?? null };
  }

  /** (bucket, count) pairs of the non-empty buckets, ascending. */
  pairs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let b = 0; b < this.size; b++) if (this.counts[b] !== 0) out.push([b, this.counts[b]!]);
    return out;
  }
}

/** Nearest-rank p50/p95/p99 of a histogram given as bucket -> count. */
export function statsOf(h: Map<number, number>): DurationStats {
  const hist = new Histogram();
  for (const [b, n] of h) hist.add(b, n);
  return hist.stats();
}
