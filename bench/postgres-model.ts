/**
 * What a folded storage model would save PostgreSQL per one-step run, measured before building it: W1's writes in
 * raw SQL, with no engine, on a durable embedded PostgreSQL of its own, under three models side by side.
 *
 * - `today`: the tables as migrated by Sluice now. The claim updates the attempt, its step and (queued) run and
 *   writes one events row per run; the finish updates the attempt, the step and the run and writes one events row.
 * - `attempt in step`: no attempts row for a first try: the step row holds the lease (owner, fence, lease expiry,
 *   availability), with a queue index and a lease index on it, as attempts has today. The run is still updated at
 *   the claim.
 * - `run at end only`: as `attempt in step`, and the claim does not touch the run (its start would be read from its
 *   first step's).
 * - `history from rows`: as `run at end only`, and no events rows for the claim and the finish: their events would be
 *   derived from the state rows' timestamps and outcomes (rows only for transitions that carry their own data).
 *
 * Each model: 10,000 runs created in bulk, `ANALYZE` and a checkpoint, then 2 connections, each repeating one
 * transaction that finishes its previous batch and claims the next (batches of 256), as the worker does. Printed per
 * run: WAL bytes and records, and the CPU of the two backends (/proc). The statements are shaped like the store's
 * but are not the store's: the figures show what the model's row writes cost, not what a built store would reach.
 *
 *   npx tsx bench/postgres-model.ts [--runs 10000] [--rounds 3]
 *
 * Linux only (reads /proc).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { migrations } from '../src/store/postgres/migrations/index.js';
import { printModelTable } from './support/model-table.js';
import { startPostgres } from './support/postgres.js';

const CLOCK_TICKS = 100;
const BATCH = 256;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

interface Model {
  name: string;
  /** DDL after Sluice's migrations. */
  schema: string;
  /** Creates `$1` runs of one step, queued. */
  create: string;
  /** $1 owner, $2 now, $3 limit: returns run_id, step (and id where there is an attempts row). */
  claim: string;
  /** Finishes the claimed attempts, where there are attempt rows: $1 ids, $2 now. */
  finishAttempts?: string;
  /** Finishes the claimed steps: $1 run ids, $2 steps, $3 now. */
  finishSteps: string;
  /** Whether the finish writes an events row per run. */
  finishEvents: boolean;
}

const NEW_RUNS = `INSERT INTO runs (id, pipeline, version, status, input, max_parallel, remaining, run_at, created_at)
  SELECT lpad(g::text, 12, '0'), 'w1', 1, 'queued', jsonb_build_object('i', g), 1, 1, 0, g FROM generate_series(1, $1) g`;
const QUEUED_EVENTS = `INSERT INTO events (run_id, pipeline, step, type, data, at, more)
  SELECT lpad(g::text, 12, '0'), 'w1', NULL, 'run.queued', NULL, g, '[["only","step.queued",null,0]]' FROM generate_series(1, $1) g`;

/** The claim's events: one row per run, run.started with step.started packed. */
const STARTED_EVENTS = `INSERT INTO events (run_id, pipeline, step, type, data, at, more)
  SELECT run_id, 'w1', NULL, 'run.started', NULL, $2, jsonb_build_array(jsonb_build_array(step, 'step.started', jsonb_build_object('attempt', 1), $2))::text FROM claimed ORDER BY run_id`;
const SUCCEEDED_EVENTS = `INSERT INTO events (run_id, pipeline, step, type, data, at, more)
  SELECT r, 'w1', s, 'step.succeeded', jsonb_build_object('attempt', 1, 'duration_ms', 0), $3, '[[null,"run.succeeded",null,0]]'
  FROM unnest($1::text[], $2::text[]) AS u(r, s) ORDER BY r`;
const FINISH_RUNS = `UPDATE runs SET status = 'succeeded', started_at = COALESCE(started_at, $2), finished_at = $2, remaining = remaining - 1
  WHERE id = ANY (ARRAY(SELECT unnest($1::text[])))`;

const today: Model = {
  name: 'today',
  schema: '',
  create: `WITH r AS (${NEW_RUNS}), s AS (
      INSERT INTO steps (run_id, name, seq, status, waiting_on) SELECT lpad(g::text, 12, '0'), 'only', 0, 'queued', 0 FROM generate_series(1, $1) g),
    a AS (INSERT INTO attempts (run_id, step, number, status, available_at, queued_at) SELECT lpad(g::text, 12, '0'), 'only', 1, 'queued', 0, 0 FROM generate_series(1, $1) g)
    ${QUEUED_EVENTS}`,
  claim: `WITH picked AS (SELECT id FROM attempts WHERE status = 'queued' AND available_at <= $2 ORDER BY priority DESC, available_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),
    claimed AS (UPDATE attempts a SET status = 'running', owner = $1, fence = fence + 1, lease_expires_at = $2 + 30000, started_at = $2
      WHERE a.id = ANY (ARRAY(SELECT id FROM picked)) RETURNING a.id, a.run_id, a.step),
    st AS (UPDATE steps s SET status = 'running', attempts = attempts + 1, started_at = $2 FROM claimed c WHERE s.run_id = c.run_id AND s.name = c.step),
    ru AS (UPDATE runs r SET status = 'running', started_at = $2 FROM claimed c WHERE r.id = c.run_id AND r.status = 'queued'),
    ev AS (${STARTED_EVENTS})
    SELECT id, run_id, step FROM claimed`,
  finishAttempts: `UPDATE attempts SET status = 'succeeded', finished_at = $2, processing_ms = 0 WHERE id = ANY ($1::bigint[])`,
  finishSteps: `UPDATE steps SET status = 'succeeded', output = 'null', finished_at = $3 FROM unnest($1::text[], $2::text[]) AS u(r, s)
      WHERE steps.run_id = u.r AND steps.name = u.s`,
  finishEvents: true,
};

/** Steps that hold their first attempt's lease. */
const STEP_LEASES = `
ALTER TABLE steps ADD COLUMN owner text, ADD COLUMN fence integer NOT NULL DEFAULT 0, ADD COLUMN lease_expires_at bigint,
  ADD COLUMN available_at bigint NOT NULL DEFAULT 0, ADD COLUMN processing_ms integer;
CREATE INDEX steps_queue ON steps (priority DESC, available_at, run_id, name) WHERE status = 'queued';
CREATE INDEX steps_leases ON steps (lease_expires_at) WHERE status = 'running';`;

const stepCreate = `WITH r AS (${NEW_RUNS}), s AS (
      INSERT INTO steps (run_id, name, seq, status, waiting_on) SELECT lpad(g::text, 12, '0'), 'only', 0, 'queued', 0 FROM generate_series(1, $1) g)
    ${QUEUED_EVENTS}`;
const stepClaim = (touchRun: boolean, events = true) => `WITH picked AS (SELECT run_id, name FROM steps WHERE status = 'queued' AND available_at <= $2
      ORDER BY priority DESC, available_at, run_id, name LIMIT $3 FOR UPDATE SKIP LOCKED),
    claimed AS (UPDATE steps s SET status = 'running', owner = $1, fence = fence + 1, lease_expires_at = $2 + 30000, attempts = attempts + 1, started_at = $2
      FROM picked p WHERE s.run_id = p.run_id AND s.name = p.name RETURNING s.run_id, s.name AS step),
    ${touchRun ? `ru AS (UPDATE runs r SET status = 'running', started_at = $2 FROM claimed c WHERE r.id = c.run_id AND r.status = 'queued'),` : ''}
    ${events ? `ev AS (${STARTED_EVENTS})` : 'ev AS (SELECT 1)'}
    SELECT NULL::bigint AS id, run_id, step FROM claimed`;
const stepFinish = `UPDATE steps SET status = 'succeeded', output = 'null', finished_at = $3, processing_ms = 0, lease_expires_at = NULL
      FROM unnest($1::text[], $2::text[]) AS u(r, s) WHERE steps.run_id = u.r AND steps.name = u.s`;

const MODELS: Model[] = [
  today,
  { name: 'attempt in step', schema: STEP_LEASES, create: stepCreate, claim: stepClaim(true), finishSteps: stepFinish, finishEvents: true },
  { name: 'run at end only', schema: STEP_LEASES, create: stepCreate, claim: stepClaim(false), finishSteps: stepFinish, finishEvents: true },
  { name: 'history from rows', schema: STEP_LEASES, create: stepCreate, claim: stepClaim(false, false), finishSteps: stepFinish, finishEvents: false },
];

interface Figures {
  ms: number;
  walBytes: number;
  walRecords: number;
  cpuMs: number;
}

/** One worker: finish the previous batch and claim the next in one transaction, until nothing is left. */
async function work(c: pg.Client, m: Model, owner: string): Promise<void> {
  let held: Array<{ id: string | null; run_id: string; step: string }> = [];
  for (;;) {
    const now = Date.now();
    await c.query('BEGIN');
    if (held.length > 0) {
      if (m.finishAttempts) await c.query(m.finishAttempts, [held.map((h) => h.id), now]);
      await c.query(m.finishSteps, [held.map((h) => h.run_id), held.map((h) => h.step), now]);
      await c.query(FINISH_RUNS, [held.map((h) => h.run_id), now]);
      if (m.finishEvents) await c.query(SUCCEEDED_EVENTS, [held.map((h) => h.run_id), held.map((h) => h.step), now]);
    }
    held = (await c.query(m.claim, [owner, now, BATCH])).rows;
    await c.query('COMMIT');
    if (held.length === 0) return;
  }
}

async function measure(serverUrl: string, m: Model, runs: number, round: number): Promise<Figures> {
  const name = `model_${round}_${m.name.replace(/\W+/g, '_')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  const workers = [new pg.Client({ connectionString: url.toString() }), new pg.Client({ connectionString: url.toString() })];
  try {
    for (const mig of migrations) await c.query(mig.sql);
    if (m.schema) await c.query(m.schema);
    await c.query(m.create, [runs]);
    await c.query('ANALYZE');
    await c.query('CHECKPOINT');
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    for (const w of workers) await w.connect();
    const pids = await Promise.all(workers.map(async (w) => (await w.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid));
    const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
    const from = (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn;
    const t0 = performance.now();
    await Promise.all(workers.map((w, i) => work(w, m, `w${i}`)));
    const ms = performance.now() - t0;
    const cpuMs = (pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0) * 1000;
    const to = (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn;
    const left = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM runs WHERE status <> 'succeeded'`);
    if (left.rows[0]!.n !== 0) throw new Error(`${m.name}: ${left.rows[0]!.n} runs did not finish`);
    const { rows } = await c.query<{ bytes: string; records: string }>(
      `SELECT pg_wal_lsn_diff($2, $1) AS bytes, (SELECT sum(count) FROM pg_get_wal_stats($1, $2)) AS records`,
      [from, to],
    );
    return { ms, walBytes: Number(rows[0]!.bytes) / runs, walRecords: Number(rows[0]!.records) / runs, cpuMs: cpuMs / runs };
  } finally {
    for (const w of workers) await w.end().catch(() => undefined);
    await c.end();
  }
}

async function main(): Promise<void> {
  const runs = arg('runs', 10_000);
  const rounds = arg('rounds', 3);
  delete process.env.SLUICE_TEST_POSTGRES_URL;
  const db = await startPostgres();
  try {
    const all = new Map<string, Figures[]>(MODELS.map((m) => [m.name, []]));
    // Models alternate within each round, so that the machine's drift falls on all of them alike.
    for (let r = 0; r < rounds; r++) for (const m of MODELS) all.get(m.name)!.push(await measure(db.url, m, runs, r));
    printModelTable(`${runs} one-step runs, 2 connections, batches of ${BATCH}; medians of ${rounds} (min-max)`, all, [
      { label: 'runs/s', value: (x) => (runs / x.ms) * 1000, digits: 0 },
      { label: 'WAL bytes per run', value: (x) => x.walBytes, digits: 0 },
      { label: 'WAL records per run', value: (x) => x.walRecords, digits: 1 },
      { label: 'backend CPU ms per run', value: (x) => x.cpuMs, digits: 3 },
    ]);
  } finally {
    await db.stop();
  }
}

await main();
