/**
 * `pipelineStats` (what `GET /api/pipelines/:name/stats` answers) over 1,000,000 finished attempts: 200,000
 * runs of one five-step pipeline, loaded in bulk with SQL straight into a fresh SQLite file and a fresh
 * PostgreSQL database (created on `SLUICE_TEST_POSTGRES_URL`, else on an embedded server), folded into the stats
 * rollup as the leader does (`--no-fold`: not folded, every row read raw), then asked for the stats of the last
 * day (every run), with and without a 24-bucket series. Prints the median of `--repeat` calls.
 *
 *   npx tsx bench/stats.ts [--runs 200000] [--repeat 5] [--only sqlite|postgres] [--file PATH] [--no-fold]
 *
 * `--file` keeps the SQLite file at PATH (and reuses it when it exists) instead of a temporary one.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/store.js';
import { startPostgres } from './support/postgres.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const RUNS = Number(arg('runs', '200000'));
const REPEAT = Number(arg('repeat', '5'));
const ONLY = arg('only', '');
const FILE = arg('file', '');
const NO_FOLD = process.argv.includes('--no-fold');
const STEPS = ['fetch', 'parse', 'enrich', 'score', 'store'];
const NOW = Date.now();
const DAY = 86_400_000;
const PIPELINE = 'bench';

/** One run's rows: created within the last 23 h; attempt durations spread over 1 ms..~10 s, some with usage. */
function runRow(i: number) {
  const created = NOW - 23 * 3_600_000 + Math.floor((i / RUNS) * 23 * 3_600_000);
  const id = `r${String(i).padStart(9, '0')}`;
  const failed = i % 97 === 0;
  return { id, created, failed };
}

function attemptMs(i: number, s: number): number {
  // A deterministic spread with a long tail.
  const x = ((i * 2654435761 + s * 40503) >>> 0) / 2 ** 32;
  return Math.round(1 + 50 * s + x * x * x * 10_000);
}

async function loadSqlite(path: string): Promise<void> {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const run = db.prepare(`INSERT INTO runs (id, pipeline, version, status, input, max_parallel, remaining, run_at, created_at, started_at, finished_at)
                          VALUES (?, ?, 1, ?, '{}', 4, 0, ?, ?, ?, ?)`);
  // Each step's one attempt is on its row (docs/store.md, "A step row holds its live attempt").
  const step = db.prepare(`INSERT INTO steps (run_id, name, seq, status, waiting_on, attempts, started_at, finished_at, attempt_status, available_at, queued_at,
                                              attempt_started_at, attempt_finished_at, processing_ms, usage)
                           VALUES (?, ?, ?, ?, 0, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const r = runRow(i);
      let t = r.created;
      for (const [s, name] of STEPS.entries()) {
        const ms = attemptMs(i, s);
        const status = r.failed && s === STEPS.length - 1 ? 'failed' : 'succeeded';
        const usage = s === 2 ? `{"tokensIn":${100 + (i % 50)},"tokensOut":${20 + (i % 7)},"cost":0.001}` : null;
        step.run(r.id, name, s, status, t, t + ms, status, t, t, t, t + ms, ms, usage);
        t += ms;
      }
      run.run(r.id, PIPELINE, r.failed ? 'failed' : 'succeeded', r.created, r.created, r.created, t);
    }
  });
  for (let i = 0; i < RUNS; i += 10_000) batch(i, Math.min(RUNS, i + 10_000));
  db.close();
}

async function loadPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let from = 0; from < RUNS; from += 20_000) {
      const to = Math.min(RUNS, from + 20_000);
      // Rows are made by the server from generate_series, with the same formulas as runRow/attemptMs.
      await client.query(
        `WITH g AS (SELECT i, $3::bigint - 82800000 + floor((i::float8 / $4) * 82800000)::bigint AS created FROM generate_series($1::int, $2::int - 1) AS i),
              a AS (SELECT g.i, g.created, s, 1 + 50 * s + round(power(((g.i::bigint * 2654435761 + s * 40503) % 4294967296)::float8 / 4294967296, 3) * 10000)::bigint AS ms
                    FROM g CROSS JOIN generate_series(0, 4) AS s),
              -- Each step's one attempt is on its row.
              st AS (SELECT a.*, CASE WHEN i % 97 = 0 AND s = 4 THEN 'failed' ELSE 'succeeded' END AS status FROM a),
              ins_steps AS (INSERT INTO steps (run_id, name, seq, status, waiting_on, attempts, started_at, finished_at, attempt_status, available_at, queued_at,
                                               attempt_started_at, attempt_finished_at, processing_ms, usage)
                            SELECT 'r' || lpad(i::text, 9, '0'), ($5::text[])[s + 1], s, status, 0, 1, created, created + ms, status, created, created,
                                   created, created + ms, ms,
                                   CASE WHEN s = 2 THEN json_build_object('tokensIn', 100 + i % 50, 'tokensOut', 20 + i % 7, 'cost', 0.001)::jsonb END FROM st)
         INSERT INTO runs (id, pipeline, version, status, input, max_parallel, remaining, run_at, created_at, started_at, finished_at)
         SELECT 'r' || lpad(i::text, 9, '0'), $6, 1, CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'succeeded' END, '{}', 4, 0, created, created, created,
                created + sum(ms) FROM a GROUP BY i, created`,
        [from, to, NOW, RUNS, STEPS, PIPELINE],
      );
    }
    await client.query('ANALYZE');
  } finally {
    await client.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * What the leader does for a store with history: folds it into the stats rollup, one batch per transaction, until
 * the watermark (now - 60 s). Prints the whole time and the longest batch (how long the store was held at most).
 */
async function fold(store: Store, label: string): Promise<void> {
  let batches = 0;
  let longest = 0;
  const t0 = performance.now();
  for (;;) {
    const t = performance.now();
    const r = await store.foldStats!(Date.now());
    longest = Math.max(longest, performance.now() - t);
    batches++;
    if (r.done) break;
  }
  console.log(`${label.padEnd(10)} folded in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${batches} batches, longest ${longest.toFixed(0)} ms`);
}

async function time(store: Store, label: string): Promise<void> {
  const figures: string[] = [];
  for (const series of [undefined, { buckets: 24, until: NOW + 1 }]) {
    const ms: number[] = [];
    let attempts = 0;
    for (let k = 0; k < REPEAT; k++) {
      const t0 = performance.now();
      const stats = await store.pipelineStats!(PIPELINE, NOW - DAY, series);
      ms.push(performance.now() - t0);
      attempts = stats.steps.reduce((n, s) => n + s.attempts, 0);
    }
    figures.push(`${series ? 'with 24-bucket series' : 'totals'} ${median(ms).toFixed(0)} ms (min ${Math.min(...ms).toFixed(0)}) over ${attempts.toLocaleString('en-US')} attempts`);
  }
  console.log(`${label.padEnd(10)} ${figures.join('; ')}`);
}

console.log(`pipelineStats over ${RUNS.toLocaleString('en-US')} runs x ${STEPS.length} steps, median of ${REPEAT}`);
if (ONLY !== 'postgres') {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-stats-'));
  try {
    const path = FILE || join(dir, 'sluice.db');
    if (!existsSync(path)) {
      const store = new SqliteStore({ path });
      await store.migrate();
      await store.close();
      const t0 = performance.now();
      await loadSqlite(path);
      console.log(`sqlite     loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const reopened = new SqliteStore({ path });
    await reopened.migrate();
    if (!NO_FOLD) await fold(reopened, 'sqlite');
    await time(reopened, 'sqlite');
    await reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (ONLY !== 'sqlite') {
  const db = await startPostgres();
  try {
    const store = new PostgresStore({ url: db.url });
    await store.migrate();
    const t0 = performance.now();
    await loadPostgres(db.url);
    console.log(`postgres   loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (!NO_FOLD) await fold(store, 'postgres');
    await time(store, 'postgres');
    await store.close();
  } finally {
    await db.stop();
  }
}
