import { describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { READY_STEP_STATEMENTS } from '../../src/store/ledger/queue-ready.js';
import { withSqlitePlans } from '../support/sqlite-plan.js';
import { postgresDisabled } from '../support/postgres.js';
import { plans, withPostgresPlans } from '../support/postgres-plan.js';
import { testSteps } from '../support/test-steps.js';

// Queueing runs at every settle. Found through the run's primary key, the ready steps of a wide run are read
// among all its steps each time, and a fan-in of N steps costs N² (on PostgreSQL, dropping steps_ready took a
// fan-in of 10,000 from 1.8 to 3.3 ms a step). The ready-step index keeps each queueing to the steps it takes.
const WIDTH = 2000;
const steps = testSteps({ noop: () => null });
const statements = Object.entries(READY_STEP_STATEMENTS);

describe('finding the ready steps of a run', () => {
  it('on SQLite, reads the ready-step index', async () => {
    await withSqlitePlans((plan) => {
      for (const [name, stmt] of statements) expect(plan(stmt.sqlite, stmt.sqliteArgs(['r1', 256])), name).toMatch(/USING INDEX steps_ready/);
    });
  });

  it.skipIf(postgresDisabled())(`on PostgreSQL, reads the ready-step index of a run of ${WIDTH} steps, before and after statistics`, async () => {
    await withPostgresPlans(steps, async (engine, client) => {
      const spec: { name: string; steps: Record<string, unknown> } = { name: 'wide', steps: {} };
      for (let i = 0; i < WIDTH; i++) spec.steps[`s${i}`] = { uses: 'function', with: { fn: 'noop' } };
      spec.steps['join'] = { uses: 'function', with: { fn: 'noop' }, needs: Object.keys(spec.steps) };
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      const runs = await engine.startRuns('wide', [{}, {}, {}]);
      const runId = runs[0]!.run.id;
      for (const analyzed of [false, true]) {
        if (analyzed) await client.query('ANALYZE steps');
        for (const [name, stmt] of statements) {
          for (const plan of await plans(client, stmt.pg, [runId, 256])) expect(plan, `${name}${analyzed ? ' (analyzed)' : ''}:\n${plan}`).toMatch(/steps_ready/);
        }
      }
    });
  });
});
