/** The duration histogram of the stats rollup: exact below 256 ms, within 1% above. */
import { describe, expect, it } from 'vitest';
import { bucketOf, statsOf, valueOf } from '../../src/store/stats/histogram.js';
import { durationStats } from '../../src/store/sqlite/operations.js';

describe('stats duration histogram', () => {
  it('stands for every duration exactly below 256 ms and within 1% of it up to a week', () => {
    for (let ms = 0; ms < 256; ms++) expect(valueOf(bucketOf(ms))).toBe(ms);
    let worst = 0;
    for (let ms = 256; ms < 7 * 86_400_000; ms = Math.ceil(ms * 1.0007) + 1) worst = Math.max(worst, Math.abs(valueOf(bucketOf(ms)) - ms) / ms);
    expect(worst).toBeLessThan(0.01);
  });

  it('gives nearest-rank percentiles within 1% of the exact ones', () => {
    const values = Array.from({ length: 5000 }, (_, i) => Math.round(1 + (((i * 2654435761) % 4294967296) / 4294967296) ** 3 * 20_000));
    const h = new Map<number, number>();
    for (const v of values) h.set(bucketOf(v), (h.get(bucketOf(v)) ?? 0) + 1);
    const got = statsOf(h);
    const want = durationStats(values);
    expect(got.count).toBe(want.count);
    for (const k of ['p50', 'p95', 'p99'] as const) {
      if (want[k]! < 256) expect(got[k]).toBe(want[k]);
      else expect(Math.abs(got[k]! - want[k]!) / want[k]!).toBeLessThan(0.01);
    }
  });
});
