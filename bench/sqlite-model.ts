/**
 * What a folded storage model would save SQLite per one-step run, measured before building it: W1's writes in raw
 * SQL, with no engine and no executor, on a SQLite file (WAL, synchronous=NORMAL, as the store opens it), under the
 * models of bench/postgres-model.ts:
 *
 * - `today`: the tables as migrated by Sluice now; the claim updates the attempt, its step and (queued) run and
 *   writes one events row per run; the finish updates the attempt, the step and the run and writes one events row.
 * - `attempt in step`: no attempts row for a first try; the step row holds the lease, with a queue and a lease index.
 * - `run at end only`: as `attempt in step`, and the claim does not touch the run.
 * - `history from rows`: as `run at end only`, and no events rows for the claim and the finish.
 *
 * Each model: 20,000 runs created in bulk, then one connection repeating one transaction that finishes its previous
 * batch of 256 and claims the next, as the worker does (statements over JSON arrays, as the store's batches are).
 * Printed per run: microseconds of the loop (all of it SQLite: the process does nothing else), with automatic
 * checkpoints as the store runs them, and the WAL frames the loop writes (counted in a second pass, checkpoints off).
 *
 *   npx tsx bench/sqlite-model.ts [--runs 20000] [--rounds 3]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../src/store/sqlite/migrations/index.js';
import { printModelTable } from './support/model-table.js';

const BATCH = 256;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface Model {
  name: string;
  /** DDL after Sluice's migrations. */
  schema: string;
  /** Whether there are attempt rows. */
  attempts: boolean;
  /** Whether the claim marks the run started. */
  runAtClaim: boolean;
  /** Whether the claim and the finish write events rows. */
  events: boolean;
}

const MODELS: Model[] = [
  { name: 'today', schema: '', attempts: true, runAtClaim: true, events: true },
  { name: 'attempt in step', schema: 'lease', attempts: false, runAtClaim: true, events: true },
  { name: 'run at end only', schema: 'lease', attempts: false, runAtClaim: false, events: true },
  { name: 'history from rows', schema: 'lease', attempts: false, runAtClaim: false, events: false },
];

/** Steps that hold their first attempt's lease. */
const STEP_LEASES = `
ALTER TABLE steps ADD COLUMN owner TEXT;
ALTER TABLE steps ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE steps ADD COLUMN available_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN processing_ms INTEGER;
CREATE INDEX steps_queue ON steps (priority DESC, available_at, run_id, name) WHERE status = 'queued';
CREATE INDEX steps_leases ON steps (lease_expires_at) WHERE status = 'running';`;

const runId = (i: number) => String(i).padStart(12, '0');

function create(db: Database.Database, m: Model, runs: number): void {
  const run = db.prepare(
    `INSERT INTO runs (id, pipeline, version, status, input, max_parallel, remaining, run_at, created_at) VALUES (?, 'w1', 1, 'queued', ?, 1, 1, 0, ?)`,
  );
  const step = db.prepare(`INSERT INTO steps (run_id, name, seq, status, waiting_on) VALUES (?, 'only', 0, 'queued', 0)`);
  const attempt = db.prepare(`INSERT INTO attempts (run_id, step, number, status, available_at, queued_at) VALUES (?, 'only', 1, 'queued', 0, 0)`);
  const event = db.prepare(`INSERT INTO events (run_id, pipeline, step, type, data, at, more) VALUES (?, 'w1', NULL, 'run.queued', NULL, ?, '[["only","step.queued",null,0]]')`);
  db.transaction(() => {
    for (let i = 1; i <= runs; i++) {
      const id = runId(i);
      run.run(id, JSON.stringify({ i }), i);
      step.run(id);
      if (m.attempts) attempt.run(id);
      event.run(id, i);
    }
  })();
}

interface Held {
  id: number | null;
  run_id: string;
  step: string;
}

/** The loop of one worker: finish the previous batch and claim the next in one transaction, until nothing is left. */
function work(db: Database.Database, m: Model): void {
  const pick = m.attempts
    ? db.prepare(`SELECT id, run_id, step FROM attempts WHERE status = 'queued' AND available_at <= @now ORDER BY priority DESC, available_at, id LIMIT @limit + 0`)
    : db.prepare(`SELECT NULL AS id, run_id, name AS step FROM steps WHERE status = 'queued' AND available_at <= @now ORDER BY priority DESC, available_at, run_id, name LIMIT @limit + 0`);
  const PAIRS = `(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(@list))`;
  const leaseAttempts = db.prepare(`UPDATE attempts SET status = 'running', owner = 'w', fence = fence + 1, lease_expires_at = @now + 30000, started_at = @now WHERE id IN (SELECT value FROM json_each(@list))`);
  const startSteps = m.attempts
    ? db.prepare(`UPDATE steps SET status = 'running', attempts = attempts + 1, started_at = @now WHERE (run_id, name) IN ${PAIRS}`)
    : db.prepare(`UPDATE steps SET status = 'running', owner = 'w', fence = fence + 1, lease_expires_at = @now + 30000, attempts = attempts + 1, started_at = @now WHERE (run_id, name) IN ${PAIRS}`);
  const startRuns = db.prepare(`UPDATE runs SET status = 'running', started_at = @now WHERE id IN (SELECT value FROM json_each(@list)) AND status = 'queued'`);
  const startedEvents = db.prepare(`INSERT INTO events (run_id, pipeline, step, type, data, at, more)
    SELECT json_extract(value, '$[0]'), 'w1', NULL, 'run.started', NULL, @now, json_array(json_array(json_extract(value, '$[1]'), 'step.started', json_object('attempt', 1), @now)) FROM json_each(@list)`);
  const finishAttempts = db.prepare(`UPDATE attempts SET status = 'succeeded', finished_at = @now, processing_ms = 0 WHERE id IN (SELECT value FROM json_each(@list))`);
  const finishSteps = m.attempts
    ? db.prepare(`UPDATE steps SET status = 'succeeded', output = 'null', finished_at = @now WHERE (run_id, name) IN ${PAIRS}`)
    : db.prepare(`UPDATE steps SET status = 'succeeded', output = 'null', finished_at = @now, processing_ms = 0, lease_expires_at = NULL WHERE (run_id, name) IN ${PAIRS}`);
  const finishRuns = db.prepare(
    `UPDATE runs SET status = 'succeeded', started_at = COALESCE(started_at, @now), finished_at = @now, remaining = remaining - 1 WHERE id IN (SELECT value FROM json_each(@list))`,
  );
  const succeededEvents = db.prepare(`INSERT INTO events (run_id, pipeline, step, type, data, at, more)
    SELECT json_extract(value, '$[0]'), 'w1', json_extract(value, '$[1]'), 'step.succeeded', json_object('attempt', 1, 'duration_ms', 0), @now, '[[null,"run.succeeded",null,0]]' FROM json_each(@list)`);
  const batch = db.transaction((held: Held[]): Held[] => {
    const now = Date.now();
    if (held.length > 0) {
      const pairs = JSON.stringify(held.map((h) => [h.run_id, h.step]));
      if (m.attempts) finishAttempts.run({ now, list: JSON.stringify(held.map((h) => h.id)) });
      finishSteps.run({ now, list: pairs });
      finishRuns.run({ now, list: JSON.stringify(held.map((h) => h.run_id)) });
      if (m.events) succeededEvents.run({ now, list: pairs });
    }
    const next = pick.all({ now, limit: BATCH }) as Held[];
    if (next.length === 0) return next;
    const pairs = JSON.stringify(next.map((h) => [h.run_id, h.step]));
    if (m.attempts) leaseAttempts.run({ now, list: JSON.stringify(next.map((h) => h.id)) });
    startSteps.run({ now, list: pairs });
    if (m.runAtClaim) startRuns.run({ now, list: JSON.stringify(next.map((h) => h.run_id)) });
    if (m.events) startedEvents.run({ now, list: pairs });
    return next;
  });
  let held: Held[] = [];
  do held = batch(held);
  while (held.length > 0);
}

interface Figures {
  usPerRun: number;
  framesPerRun: number;
}

/** One pass of `m` in a new file: the loop's time, and the WAL frames it wrote when `frames` (checkpoints off). */
function pass(file: string, m: Model, runs: number, frames: boolean): { ms: number; frames: number } {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    for (const mig of migrations) db.exec(mig.sql);
    if (m.schema) db.exec(STEP_LEASES);
    create(db, m, runs);
    db.exec('ANALYZE');
    db.pragma('wal_checkpoint(TRUNCATE)');
    if (frames) db.pragma('wal_autocheckpoint = 0');
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const t0 = performance.now();
    work(db, m);
    const ms = performance.now() - t0;
    const left = (db.prepare(`SELECT count(*) AS n FROM runs WHERE status <> 'succeeded'`).get() as { n: number }).n;
    if (left !== 0) throw new Error(`${m.name}: ${left} runs did not finish`);
    // A WAL file is a 32-byte header and frames of a 24-byte header and a page.
    return { ms, frames: frames ? (statSync(`${file}-wal`).size - 32) / (pageSize + 24) : 0 };
  } finally {
    db.close();
  }
}

/**
 * The loop timed with SQLite's automatic checkpoints on (every 1,000 pages, as the store runs), then again in another
 * file with them off, to count the WAL frames it writes.
 */
function measure(dir: string, m: Model, runs: number, round: number): Figures {
  const file = (what: string) => path.join(dir, `${round}-${m.name.replace(/\W+/g, '-')}-${what}.sqlite`);
  const timed = pass(file('timed'), m, runs, false);
  const counted = pass(file('frames'), m, runs, true);
  return { usPerRun: (timed.ms * 1000) / runs, framesPerRun: counted.frames / runs };
}

function main(): void {
  const runs = arg('runs', 20_000);
  const rounds = arg('rounds', 3);
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-sqlite-model-'));
  try {
    const all = new Map<string, Figures[]>(MODELS.map((m) => [m.name, []]));
    // Models alternate within each round, so that the machine's drift falls on all of them alike.
    for (let r = 0; r < rounds; r++) for (const m of MODELS) all.get(m.name)!.push(measure(dir, m, runs, r));
    printModelTable(`${runs} one-step runs, one connection, batches of ${BATCH}; medians of ${rounds} (min-max)`, all, [
      { label: 'µs per run', value: (x) => x.usPerRun, digits: 1 },
      { label: 'WAL frames per run', value: (x) => x.framesPerRun, digits: 2 },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
