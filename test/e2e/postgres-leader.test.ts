/**
 * Leadership on PostgreSQL with real `sluice worker` processes: exactly one leads (and reaps); when the leader is
 * killed with SIGKILL another takes over within seconds, and the run the dead leader was executing is taken over
 * and completes; when the leader's connection is cut, a worker leads again on a new one. Needs dist/: `npm run build`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadPipelineFile } from '../../src/core/load-pipeline.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { openStore } from '../../src/store/open-store.js';
import { LEADER_LOCK_KEY } from '../../src/store/postgres/pg-store-sql.js';
import { exited, sleep, startCli, waitFor } from '../support/cli.js';
import { postgresDisabled } from '../support/postgres.js';
import { usePostgresCli } from '../support/postgres-cli.js';

const RUNS = 6;
/**
 * How long a new leader may take after the old one died: a follower tries every second, so this only has to be
 * finite and beyond what a loaded machine adds (the time taken is printed).
 */
const TAKEOVER_BOUND_MS = 30_000;

interface Started {
  proc: ChildProcess;
  stderr: () => string;
}

describe.skipIf(postgresDisabled())('sluice worker leadership on postgres', () => {
  const pgCli = usePostgresCli('sluice-pg-leader-');

  const startWorker = (): Started => {
    const proc = startCli(['worker', '--concurrency', '1', '--store', pgCli.url], { cwd: pgCli.dir });
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.stdout?.resume();
    return { proc, stderr: () => stderr };
  };
  const leads = (w: Started) => w.stderr().split('\n').filter((l) => / leads$/.test(l)).length;

  it('one worker leads; after the leader is killed another leads and its run completes', async () => {
    const marks = path.join(pgCli.dir, 'marks');
    writeFileSync(
      path.join(pgCli.dir, 'work.mjs'),
      `import { appendFileSync } from 'node:fs';\n` +
        `export async function work(ctx) { appendFileSync(${JSON.stringify(marks)}, process.pid + ' ' + ctx.run.id + '\\n'); ` +
        `await new Promise((r) => setTimeout(r, 1500)); return { pid: process.pid }; }\n`,
    );
    const file = path.join(pgCli.dir, 'slow.yaml');
    writeFileSync(file, stringify({ name: 'slow', steps: { work: { uses: 'function', with: { module: './work.mjs', export: 'work' } } } }));

    const c = new pg.Client({ connectionString: pgCli.url });
    await c.connect();
    try {
      const count = async (sql: string) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
      const holding = `FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                 AND ((classid::bigint << 32) | objid::bigint) = ${String(LEADER_LOCK_KEY)}`;
      const lockHolders = () => count(`SELECT count(*) AS n ${holding}`);

      // The first worker leads; the two started after it follow.
      const first = startWorker();
      await waitFor('the first worker to lead', () => leads(first) === 1, 30_000);
      const workers = [first, startWorker(), startWorker()];
      await waitFor('every worker to start', () => workers.every((w) => w.stderr().includes(' on ')), 30_000);
      await sleep(1500);
      expect(workers.map(leads)).toEqual([1, 0, 0]);
      expect(await lockHolders()).toBe(1);

      const engine = new Engine({ store: await openStore(pgCli.url), steps: builtinStepTypes() });
      try {
        const loaded = await loadPipelineFile(file, engine.steps);
        const pipeline = await engine.registerPipeline(loaded.pipeline, { text: loaded.source, file });
        await engine.startRuns(pipeline, Array.from({ length: RUNS }, (_, i) => ({ input: { i } })));
      } finally {
        await engine.close();
      }

      // Kill the leader while it executes a run: that run has no one to finish it but the next leader's reaper.
      const leaderPid = first.proc.pid!;
      const markLines = () => (existsSync(marks) ? readFileSync(marks, 'utf8').split('\n').filter(Boolean) : []);
      const victimRun = await waitFor('the leader to execute a run', () => markLines().find((l) => l.startsWith(`${leaderPid} `))?.split(' ')[1], 30_000);
      process.kill(leaderPid, 'SIGKILL');
      await exited(first.proc);
      const killedAt = Date.now();

      const followers = workers.slice(1);
      await waitFor('another worker to lead', () => followers.some((w) => leads(w) === 1), TAKEOVER_BOUND_MS, 50);
      const takeoverMs = Date.now() - killedAt;
      expect(followers.map(leads).sort()).toEqual([0, 1]);
      await waitFor('the lock to have one holder', async () => (await lockHolders()) === 1, 30_000);

      await waitFor('every run to finish', async () => (await count(`SELECT count(*) AS n FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')`)) === RUNS, 60_000, 200);
      expect(await count(`SELECT count(*) AS n FROM runs WHERE status = 'succeeded'`)).toBe(RUNS);
      // The dead leader's attempt was expired and the run finished on another worker.
      const victim = (await c.query<{ status: string; n: string }>(`SELECT status, count(*) AS n FROM all_attempts WHERE run_id = $1 GROUP BY status ORDER BY status`, [victimRun])).rows;
      expect(victim.map((r) => [r.status, Number(r.n)])).toEqual([
        ['expired', 1],
        ['succeeded', 1],
      ]);
      console.log(`postgres leader: a new leader ${takeoverMs} ms after the leader was killed`);

      // The leader's connection is cut: it stops leading, and a worker leads again on a new connection.
      const [holder] = (await c.query<{ pid: number }>(`SELECT pid ${holding}`)).rows;
      const leadsBefore = followers.map(leads).reduce((a, b) => a + b, 0);
      await c.query('SELECT pg_terminate_backend($1)', [holder!.pid]);
      await waitFor('a worker to say it no longer leads', () => followers.some((w) => w.stderr().includes('no longer leads')), TAKEOVER_BOUND_MS, 50);
      // At least once: on a loaded machine a session may also be ended as idle, and a worker lead once more.
      await waitFor('a worker to lead again', () => followers.map(leads).reduce((a, b) => a + b, 0) >= leadsBefore + 1, TAKEOVER_BOUND_MS, 50);
      const [again] = (await c.query<{ pid: number }>(`SELECT pid ${holding}`)).rows;
      expect(again?.pid).not.toBe(holder!.pid);

      for (const w of followers) w.proc.kill('SIGTERM');
      await Promise.all(followers.map((w) => exited(w.proc)));
      // The server ends a session shortly after its client process is gone (at once on a quiet machine).
      await waitFor('the lock to have no holder once every worker exited', async () => (await lockHolders()) === 0, 30_000);
    } finally {
      await c.end();
    }
  }, 120_000);
});
