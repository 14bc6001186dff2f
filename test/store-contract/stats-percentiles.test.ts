/** Percentiles computed by the database (PostgreSQL) or from a SQLite histogram agree with nearest rank. */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { DurationStats } from '../../src/store/store.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

/** Nearest-rank percentiles of `values`: the reference the stores' answers must equal. */
function durationStats(values: number[]): DurationStats {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99) };
}

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
      await exec(store, { sqlite: 'UPDATE attempts SET processing_ms = ? WHERE run_id = ?', pg: 'UPDATE attempts SET processing_ms = $1 WHERE run_id = $2' }, rows);
      await exec(store, { sqlite: 'UPDATE runs SET finished_at = COALESCE(started_at, created_at) + ? * 2 WHERE id = ?', pg: 'UPDATE runs SET finished_at = COALESCE(started_at, created_at) + $1 * 2 WHERE id = $2' }, rows);
      const stats = await store.pipelineStats!('p', 0, { buckets: 3, until: Date.now() + 1 });
      expect(stats.steps[0]!.duration).toEqual(durationStats(ms));
      expect(stats.runs.duration).toEqual(durationStats(ms.map((v) => v * 2)));
      expect(stats.series!.at(-1)!.duration).toEqual(durationStats(ms.map((v) => v * 2)));
    });
  });
}
