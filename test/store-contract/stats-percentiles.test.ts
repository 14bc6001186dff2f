/**
 * Percentiles of the stats agree with nearest rank: exactly below 256 ms, within 1% of the exact value above
 * (log-spaced histogram buckets of the stats rollup).
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { durationStats, expectDurationClose, sqlOn } from '../support/stats-rows.js';
import { testSteps } from '../support/test-steps.js';

/** Runs one UPDATE per row on the store's own connection. */
async function exec(store: Store, sql: { sqlite: string; pg: string }, rows: unknown[][]): Promise<void> {
  const db = (store as unknown as { db?: Database.Database }).db;
  for (const r of rows) {
    if (db) db.prepare(sql.sqlite).run(...r);
    else await (store as unknown as { pool: pg.Pool }).pool.query(sql.pg, r);
  }
}

for (const backend of backends()) {
  describe(`stats percentiles on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('p50, p95 and p99 of steps and runs are the nearest-rank values, with ties and a long tail', async () => {
      const store = await backend.create();
      const steps = testSteps({ noop: () => null });
      const engine = new Engine({ store, steps, onError: () => {} });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline({ name: 'p', steps: { a: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      engine.startWorker({ pollMs: 10 });
      const created = await engine.startRuns('p', Array.from({ length: 137 }, (_, i) => ({ input: { i } })));
      for (const c of created) await engine.waitForRun(c.run.id);
      // Durations with ties and a tail: 137 values, so the ranks fall between whole percents.
      const ms = created.map((_, i) => (i % 7) * 10 + (i % 31 === 0 ? 5000 + i : 0));
      const rows = created.map((c, i) => [ms[i], c.run.id]);
      // Each run's one attempt (it succeeded first time) is on its step's row.
      await exec(store, { sqlite: 'UPDATE steps SET processing_ms = ? WHERE run_id = ?', pg: 'UPDATE steps SET processing_ms = $1 WHERE run_id = $2' }, rows);
      await exec(store, { sqlite: 'UPDATE runs SET finished_at = COALESCE(started_at, created_at) + ? * 2 WHERE id = ?', pg: 'UPDATE runs SET finished_at = COALESCE(started_at, created_at) + $1 * 2 WHERE id = $2' }, rows);
      const stats = await store.pipelineStats!('p', 0, { buckets: 3, until: Date.now() + 1 });
      expectDurationClose(stats.steps[0]!.duration, durationStats(ms), 'step');
      expectDurationClose(stats.runs.duration, durationStats(ms.map((v) => v * 2)), 'runs');
      expectDurationClose(stats.series!.at(-1)!.duration, durationStats(ms.map((v) => v * 2)), 'series');
      // The run path wrote nothing to the rollup: only the fold does.
      expect(Number((await sqlOn(store, 'SELECT COUNT(*) AS n FROM stats_rollup'))[0]!.n) + (await sqlOn(store, 'SELECT * FROM stats_fold')).length).toBe(0);
      // Folded into the rollup, the same answers.
      await store.foldStats(Date.now() + 120_000);
      expect(Number((await sqlOn(store, 'SELECT COUNT(*) AS n FROM stats_rollup'))[0]!.n)).toBeGreaterThan(0);
      const folded = await store.pipelineStats!('p', 0, { buckets: 3, until: Date.now() + 1 });
      expectDurationClose(folded.steps[0]!.duration, durationStats(ms), 'folded step');
      expectDurationClose(folded.runs.duration, durationStats(ms.map((v) => v * 2)), 'folded runs');
    });
  });
}
