import { describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { BATCH_STATEMENTS } from '../../src/store/postgres/pg-run-transitions.js';
import { SQL } from '../../src/store/postgres/pg-store-sql.js';
import { postgresDisabled } from '../support/postgres.js';
import { plans, withPostgresPlans } from '../support/postgres-plan.js';
import { testSteps } from '../support/test-steps.js';

const steps = testSteps({ noop: () => null });
const BATCH = 64;

describe.skipIf(postgresDisabled())('the claim and the completion batch on PostgreSQL', () => {
  it('reach runs, steps and attempts by key, before and after the tables have statistics', async () => {
    await withPostgresPlans(steps, async (engine, client) => {
      // Thousands of queued runs: enough that a sequential scan of a table costs the planner more than its
      // statistics-free guesses of a few rows by key, as a backlog does after a bulk create.
      await engine.registerPipeline(normalizePipeline({ name: 'one', steps: { only: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      for (let i = 0; i < 10; i++) await engine.startRuns('one', Array.from({ length: 1000 }, (_, j) => ({ input: { i, j } })));
      const now = Date.now();
      const attempts = (await client.query<{ id: string; run_id: string }>(`SELECT id, run_id FROM attempts ORDER BY id LIMIT ${BATCH}`)).rows;
      const ids = attempts.map((a) => Number(a.id));
      const runIds = attempts.map((a) => a.run_id);
      const each = <T>(v: T) => ids.map(() => v);
      const statements: Array<[string, string, unknown[]]> = [
        ['claimLogged', SQL.claimLogged, ['w', now, now + 30_000, BATCH]],
        ['claimLoggedIn', SQL.claimLoggedIn, ['w', now, now + 30_000, BATCH, [], [], [], [], [], [], []]],
        ['lockAttemptRuns', SQL.lockAttemptRuns, [ids]],
        ['finishAttemptsAndSteps', SQL.finishAttemptsAndSteps, [ids, each(1), each('w'), each('succeeded'), each(1), each(null), each(null), each('null'), each(null), now]],
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
        }
      }
    });
  }, 120_000);
});
