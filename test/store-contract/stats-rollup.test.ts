/**
 * The stats rollup (src/store/stats/rollup.ts) on both backends: answers from folded minutes plus raw rows equal
 * the answers computed from every row (counts exact, percentiles within 1% above 256 ms), for windows that
 * straddle the watermark, after folded runs change, after an interrupted fold and after a prune.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { PeriodicStatsFold } from '../../src/engine/stats-fold.js';
import { runPgRule } from '../../src/store/stats/pg-stats.js';
import { foldBatch, type Op, type Rule } from '../../src/store/stats/rollup.js';
import { runSqliteRule } from '../../src/store/stats/sqlite-stats.js';
import type { SeriesOptions, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { exactStats, expectStatsClose, insertAttempt, insertRun, sqlOn, type TestRun } from '../support/stats-rows.js';
import { testSteps } from '../support/test-steps.js';

const MIN = 60_000;
/** Minute-aligned, three hours ago: the rows' times are set from here. */
const T0 = Math.floor(Date.now() / MIN) * MIN - 3 * 3_600_000;
const STEPS = ['fetch', 'parse', 'store'];

/** Durations with ties and a long tail, exact and log-bucketed ones both. */
function msOf(i: number, s: number): number {
  return ((i * 37 + s * 101) % 900) + (i % 10 === 0 ? 5000 + i * 13 : 0);
}

/**
 * `count` runs of `pipeline` created 17 s apart from `from`: finished ones with three steps, every 29th still
 * running, every 31st (from the 5th) finished late at `lateAt`, every 13th a child of the run before it.
 */
function history(pipeline: string, count: number, from: number, lateAt: number, prefix = pipeline): TestRun[] {
  return Array.from({ length: count }, (_, i) => {
    const created = from + i * 17_000 + (i % 3);
    const open = i % 29 === 0;
    const failed = i % 11 === 3;
    let t = created;
    const steps = STEPS.map((name, s) => {
      const ms = msOf(i, s);
      t += ms;
      const last = s === STEPS.length - 1;
      const status = open && last ? 'running' : failed && last ? 'failed' : 'succeeded';
      const attempts = [{ status: open && last ? 'running' : status, finished: open && last ? null : t, ms: open && last ? null : ms, ...(s === 1 ? { usage: { tokensIn: 100 + i, tokensOut: 7, cost: 0.25 } } : {}) }];
      if (failed && last) attempts.unshift({ status: 'failed', finished: t - 1, ms: ms + 3 });
      return { name, status, attempts };
    });
    const finished = open ? null : i % 31 === 5 ? lateAt : t;
    return { id: `${prefix}-${String(i).padStart(4, '0')}`, pipeline, status: open ? 'running' : failed ? 'failed' : 'succeeded', created, finished, ...(i % 13 === 0 && i > 0 ? { parent: `${prefix}-${String(i - 1).padStart(4, '0')}` } : {}), steps };
  });
}

async function foldAll(store: Store, now: number, maxRuns = 7): Promise<number> {
  let batches = 0;
  for (;;) {
    batches++;
    if ((await store.foldStats!(now, { maxRuns })).done) return batches;
  }
}

async function rollupRows(store: Store): Promise<number> {
  const [row] = await sqlOn(store, 'SELECT COUNT(*) AS n FROM stats_rollup');
  return Number(row!.n);
}

/** Windows that start before, on and inside folded minutes, and right at the watermark. */
function windows(): Array<{ since: number; series?: SeriesOptions }> {
  return [
    { since: T0 - 1000 },
    { since: T0 + 5 * MIN },
    { since: T0 + 7 * MIN + 12_345, series: { buckets: 5, until: T0 + 45 * MIN } },
    { since: T0 - 1000, series: { buckets: 7, until: T0 + 60 * MIN } },
    { since: T0 + 2 * MIN, series: { buckets: 1, until: T0 + 20 * MIN + 30_000 } },
    { since: T0 + 38 * MIN + 5, series: { buckets: 3, until: T0 + 50 * MIN } },
  ];
}

async function expectAllWindows(store: Store, pipelines = ['p', 'c']): Promise<void> {
  for (const pipeline of pipelines) {
    for (const w of windows()) expectStatsClose(await store.pipelineStats(pipeline, w.since, w.series), await exactStats(store, pipeline, w.since, w.series));
  }
}

/** The rule, failing right after its first insert of rollup rows: a fold that stops midway. */
function* crashAfterInsert<T>(rule: Rule<T>): Rule<T> {
  let step = rule.next(undefined as never);
  while (!step.done) {
    const op: Op = step.value;
    const rows = yield op;
    if ('insert' in op) throw new Error('fold interrupted');
    step = rule.next(rows);
  }
  return step.value;
}

/** Runs `rule` in a transaction of its own on the store's connection, which the rule's failure rolls back. */
async function inTransaction(store: Store, rule: Rule<unknown>): Promise<void> {
  const db = (store as unknown as { db?: Database.Database }).db;
  if (db) {
    db.transaction(() => runSqliteRule(db, rule)).immediate();
    return;
  }
  const client = await (store as unknown as { pool: pg.Pool }).pool.connect();
  try {
    await client.query('BEGIN');
    await runPgRule((text, values) => client.query(text, values), rule);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

for (const backend of backends()) {
  describe(`stats rollup on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());

    it('answers as the raw rows do, for windows that straddle the watermark, and after folded runs change', async () => {
      const store = await backend.create();
      const late = T0 + 39 * MIN + 30_000;
      for (const r of [...history('p', 130, T0, late), ...history('c', 40, T0 + 20_000, late)]) await insertRun(store, r);
      // Watermark T0 + 39 min: the frontier stops there, and the runs finished late keep their minutes raw.
      const now = T0 + 40 * MIN;
      expect(await foldAll(store, now)).toBeGreaterThan(10);
      expect(await rollupRows(store)).toBeGreaterThan(25);
      await expectAllWindows(store);

      // A folded run goes back to running (retry): its minute is read raw until the next fold, then folded again.
      await sqlOn(store, `UPDATE runs SET status = 'running', finished_at = NULL WHERE id = 'p-0012'`);
      await sqlOn(store, `UPDATE steps SET status = 'pending', finished_at = NULL WHERE run_id = 'p-0012' AND name = 'store'`);
      await expectAllWindows(store, ['p']);
      await insertAttempt(store, 'p-0012', 'store', now + 30_000, { number: 2, status: 'succeeded', finished: now + 50_000, ms: 4321 });
      await sqlOn(store, `UPDATE steps SET status = 'succeeded', finished_at = $1 WHERE run_id = 'p-0012' AND name = 'store'`, [now + 50_000]);
      await sqlOn(store, `UPDATE runs SET status = 'succeeded', finished_at = $1 WHERE id = 'p-0012'`, [now + 50_000]);
      await expectAllWindows(store, ['p']);
      // A run created by a process whose clock is behind, in a folded minute, and finished later.
      await insertRun(store, { ...history('p', 1, T0 + 3 * MIN + 5, late, 'skewed')[0]!, status: 'queued', finished: null });
      await expectAllWindows(store, ['p']);
      await foldAll(store, now + 2 * MIN);
      await expectAllWindows(store, ['p']);
      await sqlOn(store, `UPDATE runs SET status = 'cancelled', finished_at = $1 WHERE id = 'skewed-0000'`, [now + 2 * MIN + 10]);
      await expectAllWindows(store, ['p']);
      await foldAll(store, now + 10 * MIN);
      await expectAllWindows(store);
    });

    it('counts nothing twice when a fold stops midway, and another process folds the rest', async () => {
      const store = await backend.create();
      for (const r of history('p', 90, T0, T0 + 30 * MIN)) await insertRun(store, r);
      const now = T0 + 40 * MIN;
      await store.foldStats!(now, { maxRuns: 20 });
      const rows = await rollupRows(store);
      await expect(inTransaction(store, crashAfterInsert(foldBatch(now, { maxRuns: 20 })))).rejects.toThrow('fold interrupted');
      expect(await rollupRows(store)).toBe(rows);
      await expectAllWindows(store, ['p']);
      const other = await backend.reopen(store);
      await foldAll(other, now, 20);
      await expectAllWindows(other, ['p']);
      await expectAllWindows(store, ['p']);
    });

    it('folds the history of an upgraded store by itself on the leader, and a prune folds the pruned minutes again', async () => {
      // A store of the release before the rollup, with history.
      const old = await backend.create();
      for (const text of ['DROP TABLE stats_rollup', 'DROP TABLE stats_fold', 'DROP INDEX runs_finished_children', `DELETE FROM sluice_migrations WHERE name = 'stats-rollup'`]) await sqlOn(old, text);
      for (const r of [...history('p', 120, T0, T0 + 50 * MIN), ...history('c', 30, T0 + 20_000, T0 + 50 * MIN)]) await insertRun(old, r);
      // Children of p's runs, in pipeline c: a prune of p removes them too.
      for (const r of history('c', 12, T0 + 30_000, T0 + 50 * MIN, 'pc')) await insertRun(old, { ...r, parent: `p-${String(r.id.slice(3)).padStart(4, '0')}` });
      const store = await backend.reopen(old);
      const steps = testSteps({ noop: () => null });
      const engine = new Engine({ store, steps, onError: () => {} });
      try {
        for (const name of ['p', 'c']) await engine.registerPipeline(normalizePipeline({ name, steps: { a: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
        const follower = new PeriodicStatsFold(store, { now: () => Date.now(), isLeading: () => false, onError: (err) => expect.fail(String(err)) });
        expect(await follower.tick()).toBeUndefined();
        expect(await rollupRows(store)).toBe(0);
        const leader = new PeriodicStatsFold(store, { now: () => Date.now(), isLeading: () => true, onError: (err) => expect.fail(String(err)), fold: { maxRuns: 9 } });
        expect((await leader.tick())?.done).toBe(true);
        await leader.stop();
        expect(await rollupRows(store)).toBeGreaterThan(25);
        await expectAllWindows(store);

        // Runs finished more than 2 h 40 min ago: about the first 20 minutes of p's runs.
        const report = await engine.prune({ olderThanMs: Date.now() - (T0 + 20 * MIN) });
        expect(report.runs).toBeGreaterThan(20);
        await expectAllWindows(store);
      } finally {
        await engine.close();
      }
    });
  });
}
