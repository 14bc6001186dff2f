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
 * different minutes add up by key.
 */
export function bucketOf(ms: number): number {
  if (ms < EXACT_BELOW_MS) return Math.round(ms);
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

/** Bucket -> how many durations. */
export type Histogram = Map<number, number>;

/** Adds `n` (may be negative) durations of bucket `bucket`. */
export function addTo(h: Histogram, bucket: number, n: number): void {
  const next = (h.get(bucket) ?? 0) + n;
  if (next === 0) h.delete(bucket);
  else h.set(bucket, next);
}

/** Adds every bucket of `from` into `into`. */
export function mergeInto(into: Histogram, from: Histogram | Record<string, number>): void {
  const entries = from instanceof Map ? from.entries() : Object.entries(from);
  for (const [k, n] of entries) addTo(into, Number(k), Number(n));
}

/** The number of durations in a histogram. */
export function countOf(h: Histogram): number {
  let n = 0;
  for (const v of h.values()) n += v;
  return n;
}

/** Nearest-rank p50/p95/p99 of a histogram (values within 1% of the exact ones, exact below 256 ms). */
export function statsOf(h: Histogram): DurationStats {
  const count = countOf(h);
  if (count <= 0) return noDurations(Math.max(0, count));
  const ranks = [50, 95, 99].map((p) => nearestRank(p, count));
  const found: number[] = [];
  let seen = 0;
  for (const bucket of [...h.keys()].sort((a, b) => a - b)) {
    seen += h.get(bucket)!;
    while (found.length < ranks.length && seen >= ranks[found.length]!) found.push(valueOf(bucket));
  }
  return { count, p50: found[0] ?? null, p95: found[1] ?? null, p99: found[2] ?? null };
}

/** A histogram as stored in a rollup row: (bucket, count) pairs of little-endian int32, buckets ascending. */
export function encodeHistogram(h: Histogram): Buffer {
  const keys = [...h.keys()].sort((a, b) => a - b);
  const buf = Buffer.allocUnsafe(keys.length * 8);
  keys.forEach((k, i) => {
    buf.writeInt32LE(k, i * 8);
    buf.writeInt32LE(h.get(k)!, i * 8 + 4);
  });
  return buf;
}

/** Adds a stored histogram (`encodeHistogram`) into `into`. */
export function addEncoded(into: Histogram, buf: Uint8Array): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i + 8 <= buf.byteLength; i += 8) addTo(into, view.getInt32(i, true), view.getInt32(i + 4, true));
}
