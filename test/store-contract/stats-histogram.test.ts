/** The duration histogram of the stats rollup: exact below 256 ms, within 1% above. */
import { describe, expect, it } from 'vitest';
import { bucketOf, statsOf, valueOf } from '../../src/store/stats/histogram.js';
import { addRunDetail, encodeRunDetail } from '../../src/store/stats/run-detail.js';
import { Tally } from '../../src/store/stats/tally.js';
import { durationStats } from '../support/stats-rows.js';

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

  it('stores a minute of the rollup and its runs without loss, large counts and long durations too', () => {
    const minute = 29_000_000;
    const at = minute * 60_000;
    const rows = [
      { pipeline: 'p', at: at + 59_999, kind: 'r' as const, name: '', status: 'succeeded', seq: null, ms: 6 * 86_400_000, n: 3_000_000_000 },
      { pipeline: 'p', at: at + 1, kind: 'r' as const, name: '', status: 'running', seq: null, ms: null, n: 1 },
      { pipeline: 'p', at: at + 1, kind: 's' as const, name: 'étape', status: 'failed', seq: 3, ms: null, n: 2 },
      { pipeline: 'p', at: at + 1, kind: 'a' as const, name: 'étape', status: '', seq: null, ms: 255, n: 70_000, tokens_in: 12, tokens_out: 3, cost: 0.5 },
    ];
    const direct = new Tally();
    for (const r of rows) direct.addRaw(r);
    const decoded = new Tally();
    decoded.addRollup({ minute, cells: direct.encode() });
    expect([...decoded.cells.values()].map((c) => ({ ...c, hist: c.hist.pairs() }))).toEqual([...direct.cells.values()].map((c) => ({ ...c, hist: c.hist.pairs() })));
    const series = new Tally();
    addRunDetail(minute, encodeRunDetail(minute, rows), (t) => (t === at + 59_999 || t === at + 1 ? series : undefined));
    expect(series.cell('r', '', 'succeeded').n).toBe(3_000_000_000);
    expect(series.cell('r', '', 'succeeded').hist.pairs()).toEqual([[bucketOf(6 * 86_400_000), 3_000_000_000]]);
    expect(series.cell('r', '', 'running').n).toBe(1);
    expect(series.cell('a', '', '').cost).toBe(0.5);
  });
});
