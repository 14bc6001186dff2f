import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunStatus } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { Statement } from '../../src/store/ledger/effects.js';
import { listRunsStatement } from '../../src/store/run-list.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { listRunPage } from '../../src/store/run-cursor.js';
import type { RunFilter, RunRecord } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { withSqlitePlans } from '../support/sqlite-plan.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from '../support/postgres.js';
import { testSteps } from '../support/test-steps.js';

const steps = testSteps({ echo: () => ({}) });
const definition = (name: string) => normalizePipeline({ name, steps: { a: { uses: 'function', with: { fn: 'echo' } } } }, { stepTypes: steps });

/** Filters the list serves, each from its own index. */
const FILTERS: Array<Omit<RunFilter, 'after' | 'limit'>> = [{}, { pipeline: 'alpha' }, { status: 'cancelled' }, { pipeline: 'beta', status: 'queued' as RunStatus }];

/** Newest first, ties on created_at broken by id, as the list promises. */
function newestFirst(runs: RunRecord[]): RunRecord[] {
  return [...runs].sort((x, y) => y.createdAt - x.createdAt || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));
}

for (const backend of backends()) {
  describe(`run list pages on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('walks every run exactly once, newest first, with and without filters, at any page size', async () => {
      const store = await backend.create();
      let now = 1_700_000_000_000;
      const engine = new Engine({ store, steps, clock: { now: () => now }, artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      await engine.registerPipeline(definition('alpha'));
      await engine.registerPipeline(definition('beta'));
      // Four instants, several runs each: pages must split runs that share created_at by id.
      for (let t = 0; t < 4; t++) {
        now += 1000;
        await engine.startRuns('alpha', Array.from({ length: 5 }, (_, i) => ({ input: { t, i } })));
        await engine.startRuns('beta', Array.from({ length: 3 }, (_, i) => ({ input: { t, i } })));
      }
      const all = await store.listRuns({ limit: 1000 });
      expect(all).toHaveLength(32);
      for (const run of all.filter((_, i) => i % 3 === 0)) await engine.cancel(run.id);
      const runs = await store.listRuns({ limit: 1000 });

      for (const filter of FILTERS) {
        const expected = newestFirst(runs.filter((r) => (!filter.pipeline || r.pipeline === filter.pipeline) && (!filter.status || r.status === filter.status)));
        expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(2);
        for (const limit of [1, 3, 7, 100]) {
          const seen: string[] = [];
          let cursor: string | undefined;
          for (let pages = 0; pages <= expected.length; pages++) {
            const page = await listRunPage(store, { ...filter, limit, cursor });
            expect(page.runs.length).toBeLessThanOrEqual(limit);
            seen.push(...page.runs.map((r) => r.id));
            if (page.nextCursor === null) break;
            cursor = page.nextCursor;
          }
          expect(seen, `${JSON.stringify(filter)} limit ${limit}`).toEqual(expected.map((r) => r.id));
        }
      }
    });

    it('refuses a cursor it did not make, naming the cursor', async () => {
      const store = await backend.create();
      await expect(listRunPage(store, { cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringMatching(/^cursor "not-a-cursor" is not a cursor/) });
    });
  });
}

describe('run list query plans', () => {
  const filters: RunFilter[] = FILTERS.flatMap((f) => [{ ...f, limit: 100 }, { ...f, limit: 100, after: { createdAt: 1, id: 'x' } }]);

  it('on SQLite, read an index in order: no scan of the table, no temporary sort', async () => {
    await withSqlitePlans((planOf) => {
      for (const filter of filters) {
        const { sql, values } = listRunsStatement(filter);
        const stmt = new Statement('listRuns', sql);
        const plan = planOf(stmt.sqlite, stmt.sqliteArgs(values));
        expect(plan, JSON.stringify(filter)).toMatch(/USING INDEX runs_by_(created|pipeline_created|status_created)/);
        expect(plan, JSON.stringify(filter)).not.toMatch(/TEMP B-TREE|SCAN runs$/);
      }
    });
  });

  it.skipIf(postgresDisabled())('on PostgreSQL, read an index in order: no Sort node', async () => {
    const server = await acquirePostgres();
    const database = await createDatabase(server);
    const store = new PostgresStore({ url: database.url, poolSize: 1 });
    const client = new pg.Client({ connectionString: database.url });
    try {
      await store.migrate();
      await client.connect();
      // On a nearly empty table a scan and a sort cost nothing; priced out, a Sort node still appears when no
      // index gives the order.
      await client.query('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off');
      for (const filter of filters) {
        const { sql, values } = listRunsStatement(filter);
        const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan, JSON.stringify(filter)).toMatch(/Index Scan using runs_by_(created|pipeline_created|status_created)/);
        expect(plan, JSON.stringify(filter)).not.toMatch(/Sort/);
      }
    } finally {
      await client.end().catch(() => undefined);
      await store.close();
      await database.drop();
      await releasePostgres();
    }
  });
});
