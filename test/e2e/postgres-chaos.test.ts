/**
 * Scale-out on PostgreSQL with real `sluice` processes: concurrent `sluice migrate`, then a chaos test where
 * `sluice worker` processes are killed with SIGKILL every 300 ms and replaced, for a bounded time. At the end
 * every run has succeeded and every step result is recorded exactly once; executions may repeat
 * (at-least-once), and the test prints how many did. Needs dist/: `npm run build`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadPipelineFile } from '../../src/core/load-pipeline.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { openStore } from '../../src/store/open-store.js';
import { migrations } from '../../src/store/postgres/migrations/index.js';
import { exited, runCli, sleep, startCli, waitFor } from '../support/cli.js';
import { postgresDisabled } from '../support/postgres.js';
import { usePostgresCli } from '../support/postgres-cli.js';

const RUNS = 1000;
const WORKERS = 3;
const KILL_EVERY_MS = 300;
const CHAOS_MS = 6000;

describe.skipIf(postgresDisabled())('sluice worker on postgres', () => {
  // Empty: the first test is several `sluice migrate` at once on a database never migrated.
  const pgCli = usePostgresCli('sluice-pg-chaos-', { empty: true });

  it('sluice migrate from several processes at once: one migrates, all succeed', async () => {
    const results = await Promise.all(Array.from({ length: 3 }, () => runCli(['migrate', '--json', '--store', pgCli.url], { cwd: pgCli.dir })));
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ migrated: true });
      expect(r.stdout).not.toContain(`:${new URL(pgCli.url).password}@`);
    }
    const c = new pg.Client({ connectionString: pgCli.url });
    await c.connect();
    try {
      const applied = (await c.query('SELECT id, name FROM sluice_migrations ORDER BY id')).rows;
      expect(applied).toEqual(migrations.map((m) => ({ id: m.id, name: m.name })));
    } finally {
      await c.end();
    }
  });

  it(`${RUNS} runs of a 3-step pipeline survive workers killed with SIGKILL every ${KILL_EVERY_MS} ms`, async () => {
    const marks = path.join(pgCli.dir, 'marks');
    writeFileSync(
      path.join(pgCli.dir, 'mark.mjs'),
      `import { appendFileSync } from 'node:fs';\n` +
        `export function mark(ctx) { appendFileSync(${JSON.stringify(marks)}, ctx.run.id + ' ' + ctx.step + '\\n'); return { step: ctx.step }; }\n`,
    );
    const file = path.join(pgCli.dir, 'chaos.yaml');
    const step = (needs: string[]) => ({ uses: 'function', ...(needs.length ? { needs } : {}), with: { module: './mark.mjs', export: 'mark' } });
    writeFileSync(file, stringify({ name: 'chaos', steps: { a: step([]), b: step(['a']), c: step(['b']) } }));

    // The runs are created up front by this process, which runs no worker.
    const engine = new Engine({ store: await openStore(pgCli.url), steps: builtinStepTypes() });
    try {
      const loaded = await loadPipelineFile(file, engine.steps);
      const pipeline = await engine.registerPipeline(loaded.pipeline, { text: loaded.source, file });
      for (let i = 0; i < RUNS; i += 500) await engine.startRuns(pipeline, Array.from({ length: Math.min(500, RUNS - i) }, (_, j) => ({ input: { i: i + j } })));
    } finally {
      await engine.close();
    }

    const startWorker = () => startCli(['worker', '--store', pgCli.url], { cwd: pgCli.dir });
    const workers = Array.from({ length: WORKERS }, startWorker);
    const started = Date.now();
    let kills = 0;
    while (Date.now() - started < CHAOS_MS) {
      await sleep(KILL_EVERY_MS);
      const i = Math.floor(Math.random() * workers.length);
      const victim = workers[i]!;
      process.kill(victim.pid!, 'SIGKILL');
      await exited(victim);
      kills += 1;
      workers[i] = startWorker();
    }

    const c = new pg.Client({ connectionString: pgCli.url });
    await c.connect();
    try {
      const count = async (sql: string) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
      // Generous: on a loaded machine three workers drain the backlog slowly.
      await waitFor('every run to finish', async () => (await count(`SELECT count(*) AS n FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')`)) === RUNS, 240_000, 200);
      const elapsed = Date.now() - started;
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => exited(w)));

      expect(await count(`SELECT count(*) AS n FROM runs WHERE status = 'succeeded'`)).toBe(RUNS);
      expect(await count(`SELECT count(*) AS n FROM steps WHERE status = 'succeeded'`)).toBe(RUNS * 3);
      // Exactly one recorded result per step: one succeeded attempt and one step.succeeded event each.
      expect(await count(`SELECT count(*) AS n FROM (SELECT run_id, step FROM all_attempts WHERE status = 'succeeded' GROUP BY run_id, step HAVING count(*) <> 1) x`)).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM all_attempts WHERE status = 'succeeded'`)).toBe(RUNS * 3);
      expect(await count(`SELECT count(*) AS n FROM (SELECT run_id, step FROM events WHERE type = 'step.succeeded' GROUP BY run_id, step HAVING count(*) <> 1) x`)).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM events WHERE type = 'step.succeeded'`)).toBe(RUNS * 3);
      expect(await count(`SELECT count(*) AS n FROM all_attempts WHERE status IN ('queued', 'running', 'held')`)).toBe(0);

      const lines = readFileSync(marks, 'utf8').split('\n').filter(Boolean);
      expect(new Set(lines).size).toBe(RUNS * 3);
      const expired = await count(`SELECT count(*) AS n FROM all_attempts WHERE status = 'expired'`);
      console.log(
        `postgres chaos: ${RUNS} runs x 3 steps, ${WORKERS} workers, ${kills} SIGKILLs in ${CHAOS_MS} ms; all done after ${elapsed} ms; ` +
          `${lines.length - RUNS * 3} step executions repeated, ${expired} leases taken over`,
      );
    } finally {
      await c.end();
    }
  }, 300_000);
});
