import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { BATCH_STATEMENTS } from '../../src/store/postgres/pg-run-transitions.js';
import { SQL } from '../../src/store/postgres/pg-store-sql.js';
import { postgresDisabled } from '../support/postgres.js';
import { plans, withPostgresPlans } from '../support/postgres-plan.js';
import { testSteps } from '../support/test-steps.js';

const steps = testSteps({ noop: () => null });
const BATCH = 64;

/** `value` (null, a number, a string or an array of them) as an SQL literal of a parameter (EXECUTE takes no parameters). */
function literal(client: pg.Client, value: unknown): string {
  const element = (v: unknown) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `"${String(v).replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  if (value === null) return 'NULL';
  if (typeof value === 'number') return String(value);
  return client.escapeLiteral(Array.isArray(value) ? `{${value.map(element).join(',')}}` : String(value));
}

/**
 * The plan a prepared statement runs once PostgreSQL settles on its generic plan (made without the parameters'
 * values: an array parameter is guessed to hold 10 elements), run and rolled back.
 */
async function genericPlanRun(client: pg.Client, text: string, values: unknown[]): Promise<string> {
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE generic_plan AS ${text}`);
    const args = values.map((v) => literal(client, v)).join(', ');
    return (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE) EXECUTE generic_plan(${args})`)).rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    await client.query('ROLLBACK');
    // A prepared statement outlives the transaction.
    await client.query('DEALLOCATE ALL');
  }
}

describe.skipIf(postgresDisabled())('the claim and the completion batch on PostgreSQL', () => {
  it('reach runs, steps and attempts by key, before and after the tables have statistics', async () => {
    await withPostgresPlans(steps, async (engine, client) => {
      // Thousands of queued runs: enough that a sequential scan of a table costs the planner more than its
      // statistics-free guesses of a few rows by key, as a backlog does after a bulk create.
      await engine.registerPipeline(normalizePipeline({ name: 'one', steps: { only: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      for (let i = 0; i < 10; i++) await engine.startRuns('one', Array.from({ length: 1000 }, (_, j) => ({ input: { i, j } })));
      const now = Date.now();
      // A batch leased, for the statements that finish attempts (the claims' plans read the rest of the queue).
      const leased = (await client.query<{ id: string | null; run_id: string | null; fence: number }>(SQL.claimLogged, ['w', now, now + 30_000, BATCH])).rows;
      const attempts = leased.filter((a) => a.id !== null && a.run_id !== null);
      expect(attempts).toHaveLength(BATCH);
      const ids = attempts.map((a) => Number(a.id));
      const runIds = attempts.map((a) => a.run_id);
      const fences = attempts.map((a) => a.fence);
      const each = <T>(v: T) => ids.map(() => v);
      const statements: Array<[string, string, unknown[]]> = [
        ['claimLogged', SQL.claimLogged, ['w', now, now + 30_000, BATCH]],
        ['claimLoggedIn', SQL.claimLoggedIn, ['w', now, now + 30_000, BATCH, [], [], [], [], [], [], []]],
        ['claimLoggedInIds', SQL.claimLoggedInIds, ['w', now, now + 30_000, BATCH, [], [], [], [], [], [], [], ids]],
        ['heartbeat', SQL.heartbeat, ['w', now + 30_000]],
        ['lockAttemptRuns', SQL.lockAttemptRuns, [ids]],
        ['finishAttemptAndStep', SQL.finishAttemptAndStep, [ids[0], fences[0], 'w', 'succeeded', now, 1, null, null, 'null', null]],
        ['finishAttemptsAndSteps', SQL.finishAttemptsAndSteps, [ids, fences, each('w'), each('succeeded'), each(1), each(null), each(null), each('null'), each(null), now, ids, each('next')]],
        ['settleMany', BATCH_STATEMENTS.settleMany.pg, [runIds, -1, -1, now]],
        ['decrementWaitingMany', BATCH_STATEMENTS.decrementWaitingMany.pg, [runIds, each('next')]],
      ];
      for (const analyzed of [false, true]) {
        if (analyzed) await client.query('ANALYZE runs, steps, attempts');
        for (const [name, text, values] of statements) {
          for (const plan of await plans(client, text, values)) {
            const label = `${name}${analyzed ? ' (analyzed)' : ''}:\n${plan}`;
            expect(plan, label).not.toMatch(/Seq Scan on (runs|steps|attempts)\b/);
            // The status index of runs serves the run list; a claim that walks it reads every queued run.
            expect(plan, label).not.toMatch(/runs_by_status_created/);
          }
          // Nor does any compare each of a batch's rows with every other: a join filter that drops about a batch of
          // rows per row (as a nested loop over the rows of an unnest guessed at 10 did).
          const plan = await genericPlanRun(client, text, values);
          const dropped = Math.max(0, ...[...plan.matchAll(/Rows Removed by Join Filter: (\d+)/g)].map((m) => Number(m[1])));
          expect(dropped, `${name}${analyzed ? ' (analyzed)' : ''}, generic plan run:\n${plan}`).toBeLessThan(BATCH * 4);
        }
      }
    });
  }, 120_000);
});
