/**
 * Where W1's time goes on SQLite: the same machine, the same file settings (WAL, synchronous=NORMAL), in one run.
 *
 *   npx tsx bench/sqlite-floor.ts [--runs 20000] [--batch 256] [--repeat 3]
 *
 * - queue floor, one job at a time: a one-table queue (one row per job, no events), each claim and each completion
 *   its own transaction: the cost of a commit per state change.
 * - queue floor, batched: the same table, each transaction completing the previous batch and claiming the next
 *   (what a batched job queue does; nothing else is written).
 * - Sluice store alone: `completeAttempts` with `claimNext` on a SqliteStore, batches of `--batch`, no executor:
 *   the attempt, step and run rows of each run and its events, as a real worker writes them.
 * - Sluice W1 execute: the end-to-end figure of `npm run bench` (store, executor and worker in one process).
 *
 * Each figure is printed as runs per second and as microseconds per run, the unit a per-run budget is spent in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { AttemptResult } from '../src/store/store.js';
import { builtinStepTypes, normalizePipeline, pipelineVersionHash, SqliteStore } from './support/built.js';
import { w1 } from './sluice-workloads.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '256' },
    repeat: { type: 'string', default: '3' },
  },
});
const RUNS = Number(values.runs);
const BATCH = Number(values.batch);
const REPEAT = Number(values.repeat);

/** A temp folder for one measurement, removed after it. */
async function inTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-floor-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Milliseconds to claim and complete `RUNS` jobs of a one-table queue, one job per transaction or `BATCH` at a time. */
function queueFloor(batched: boolean): Promise<number> {
  return inTempDir((dir) => {
    const db = new Database(join(dir, 'queue.db'));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, owner TEXT, lease_until INTEGER,
                 payload TEXT NOT NULL, finished_at INTEGER);
               CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';`);
      const insert = db.prepare(`INSERT INTO jobs (status, payload) VALUES ('queued', ?)`);
      db.transaction(() => {
        for (let i = 0; i < RUNS; i++) insert.run(JSON.stringify({ i }));
      })();
      const claim = db.prepare(`UPDATE jobs SET status = 'running', owner = 'w', lease_until = @until
        WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT @limit) RETURNING id, payload`);
      const complete = db.prepare(`UPDATE jobs SET status = 'done', finished_at = @now, lease_until = NULL
        WHERE id IN (SELECT value FROM json_each(@ids)) AND owner = 'w' AND status = 'running'`);
      const completeOne = db.prepare(`UPDATE jobs SET status = 'done', finished_at = @now, lease_until = NULL
        WHERE id = @id AND owner = 'w' AND status = 'running'`);
      const start = performance.now();
      if (batched) {
        const step = db.transaction((ids: number[]) => {
          if (ids.length > 0) complete.run({ now: Date.now(), ids: JSON.stringify(ids) });
          return (claim.all({ until: Date.now() + 30_000, limit: BATCH }) as Array<{ id: number; payload: string }>).map((r) => {
            JSON.parse(r.payload);
            return r.id;
          });
        });
        for (let ids = step([]); ids.length > 0; ) ids = step(ids);
      } else {
        const claimOne = db.transaction(() => claim.get({ until: Date.now() + 30_000, limit: 1 }) as { id: number; payload: string } | undefined);
        const completeIt = db.transaction((id: number) => completeOne.run({ now: Date.now(), id }));
        for (let job = claimOne(); job; job = claimOne()) {
          JSON.parse(job.payload);
          completeIt(job.id);
        }
      }
      const ms = performance.now() - start;
      const left = (db.prepare(`SELECT count(*) AS n FROM jobs WHERE status <> 'done'`).get() as { n: number }).n;
      if (left !== 0) throw new Error(`queue floor: ${left} jobs not done`);
      return ms;
    } finally {
      db.close();
    }
  });
}

/** Milliseconds for a SqliteStore to claim and complete `RUNS` one-step runs in batches, with no executor. */
function storeAlone(): Promise<number> {
  return inTempDir(async (dir) => {
    const store = new SqliteStore({ path: join(dir, 'store.db') });
    try {
      await store.migrate();
      const steps = builtinStepTypes({ functions: { noop: () => null } });
      const definition = normalizePipeline({ name: 'w1', max_parallel: 1, steps: { only: { uses: 'function', with: { name: 'noop' }, cache: false } } }, { stepTypes: steps });
      const pipeline = await store.savePipeline(definition, pipelineVersionHash(definition));
      for (let i = 0; i < RUNS; i += 1000) {
        const n = Math.min(1000, RUNS - i);
        await store.createRuns(Array.from({ length: n }, (_, j) => ({ pipeline, input: { i: i + j } })), Date.now());
      }
      const next = { owner: 'w', limit: BATCH, leaseMs: 30_000 };
      const start = performance.now();
      let claimed = (await store.claimAttempts('w', BATCH, 30_000, Date.now())).attempts;
      let done = 0;
      while (claimed.length > 0) {
        const results: AttemptResult[] = claimed.map((a) => ({ attemptId: a.id, fence: a.fence, owner: 'w', outcome: 'succeeded', output: null, processingMs: 0 }));
        const batch = await store.completeAttempts(results, Date.now(), next);
        done += batch.accepted.length;
        claimed = batch.claimed;
      }
      const ms = performance.now() - start;
      if (done !== RUNS) throw new Error(`store alone: ${done} of ${RUNS} runs completed`);
      return ms;
    } finally {
      await store.close();
    }
  });
}

async function endToEnd(): Promise<number> {
  const figures = await w1(RUNS, BATCH);
  const exec = figures.find((f) => f.name === 'W1 execute')!;
  return (RUNS / exec.value) * 1000;
}

async function medianMs(fn: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < REPEAT; i++) samples.push(await fn());
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const rows: Array<[string, number]> = [
  ['queue floor, one job per transaction', await medianMs(() => queueFloor(false))],
  [`queue floor, batched (${BATCH} per transaction)`, await medianMs(() => queueFloor(true))],
  [`Sluice store alone (batches of ${BATCH})`, await medianMs(storeAlone)],
  [`Sluice W1 execute (concurrency ${BATCH})`, await medianMs(endToEnd)],
];

console.log(`SQLite floors (Node ${process.version}, ${RUNS} runs, WAL, synchronous=NORMAL, medians of ${REPEAT})\n`);
console.log(`${'figure'.padEnd(44)} ${'runs/s'.padStart(9)} ${'µs/run'.padStart(8)}`);
for (const [name, ms] of rows) {
  console.log(`${name.padEnd(44)} ${Math.round((RUNS / ms) * 1000).toLocaleString('en-US').padStart(9)} ${((ms * 1000) / RUNS).toFixed(1).padStart(8)}`);
}
