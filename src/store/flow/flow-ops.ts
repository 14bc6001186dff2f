import { all, call, get, run, sql, type Rule } from '../ledger/effects.js';
import { getRun } from '../ledger/transitions.js';
import { toRunRecord, type RunRow } from '../rows.js';
import type { CreateRunRequest, CreatedRun, RunRecord } from '../store.js';
import { EMPTY_BUCKET, type BucketState } from './flow-decide.js';
import type { RunFlow } from './flow-port.js';

// What the flow rules (flow-start.ts) read and write, as ledger rules both drivers run inside the transaction that
// creates the run. SQLite's write transaction serialises every start; PostgreSQL locks each bucket row it reads
// (FOR UPDATE) until commit, so concurrent starts of one bucket take turns across every process.

const RUN_PENDING = `SELECT 1 FROM runs r WHERE r.id = a.run_id AND r.status = 'queued' AND r.started_at IS NULL`;

const S = {
  // $1 pipeline $2 rule $3 key
  ensureBucket: sql('flowEnsureBucket', `INSERT INTO flow_buckets (pipeline, rule, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
  bucket: sql('flowBucket', {
    sqlite: `SELECT window_start, count, next_at, first_at, run_id FROM flow_buckets WHERE pipeline = $1 AND rule = $2 AND key = $3`,
    pg: `SELECT window_start, count, next_at, first_at, run_id FROM flow_buckets WHERE pipeline = $1 AND rule = $2 AND key = $3 FOR UPDATE`,
  }),
  // $1 pipeline $2 rule $3 key $4 window_start $5 count $6 next_at $7 first_at $8 run_id
  saveBucket: sql(
    'flowSaveBucket',
    `UPDATE flow_buckets SET window_start = $4, count = $5, next_at = $6, first_at = $7, run_id = $8 WHERE pipeline = $1 AND rule = $2 AND key = $3`,
  ),
  runState: sql('flowRunState', `SELECT status, run_at FROM runs WHERE id = $1`),
  // $1 id $2 run_at: delays the queued attempts of a run that has not started (on PostgreSQL, locking them first, as
  // a claim does, so that no claim takes them meanwhile)
  delayAttempts: sql('flowDelayAttempts', `UPDATE steps AS a SET available_at = $2 WHERE a.run_id = $1 AND a.attempt_status = 'queued' AND EXISTS (${RUN_PENDING})`),
  delayRun: sql('flowDelayRun', `UPDATE runs SET deadline_at = deadline_at - run_at + $2, run_at = $2 WHERE id = $1 RETURNING *`),
  delayNewAttempts: sql('flowDelayNewAttempts', `UPDATE steps SET available_at = $2 WHERE run_id = $1 AND attempt_status = 'queued'`),
  // $1 id $2 input $3 run_at
  absorbRun: sql(
    'flowAbsorbRun',
    `UPDATE runs SET input = $2, deadline_at = deadline_at - run_at + $3, run_at = $3 WHERE id = $1 AND status = 'queued' AND started_at IS NULL RETURNING *`,
  ),
  // $1 id $2 input $3 run_at $4 previous: as absorbRun, only while the input is still $4 (debounce merge)
  absorbRunIf: sql(
    'flowAbsorbRunIf',
    `UPDATE runs SET input = $2, deadline_at = deadline_at - run_at + $3, run_at = $3
     WHERE id = $1 AND status = 'queued' AND started_at IS NULL AND input = $4::jsonb RETURNING *`,
  ),
  // $1 pipeline $2 key
  pendingDebounce: sql(
    'flowPendingDebounce',
    `SELECT b.run_id, r.input FROM flow_buckets b JOIN runs r ON r.id = b.run_id
     WHERE b.pipeline = $1 AND b.rule = 'debounce' AND b.key = $2 AND r.status = 'queued' AND r.started_at IS NULL`,
  ),
  // $1 run_id $2 absorbed $3 after_run_id
  markRun: sql(
    'flowMarkRun',
    `INSERT INTO flow_runs (run_id, absorbed, after_run_id) VALUES ($1, $2, $3)
     ON CONFLICT (run_id) DO UPDATE SET absorbed = excluded.absorbed, after_run_id = excluded.after_run_id`,
  ),
  runFlow: sql('flowRunFlow', `SELECT absorbed, after_run_id FROM flow_runs WHERE run_id = $1`),
  anyHeld: sql('flowAnyHeld', `SELECT 1 AS held FROM flow_runs WHERE after_run_id IS NOT NULL LIMIT 1`),
  // held runs whose predecessor ended or is gone
  releasable: sql('flowReleasable', {
    sqlite: `SELECT f.run_id FROM flow_runs f LEFT JOIN runs p ON p.id = f.after_run_id
             WHERE f.after_run_id IS NOT NULL AND (p.id IS NULL OR p.status IN ('succeeded', 'failed', 'cancelled'))`,
    pg: `SELECT f.run_id FROM flow_runs f LEFT JOIN runs p ON p.id = f.after_run_id
         WHERE f.after_run_id IS NOT NULL AND (p.id IS NULL OR p.status IN ('succeeded', 'failed', 'cancelled')) FOR UPDATE OF f SKIP LOCKED`,
  }),
  // $1 id $2 now
  releaseRun: sql('flowReleaseRun', `UPDATE runs SET deadline_at = deadline_at - run_at + $2, run_at = $2 WHERE id = $1 AND status = 'queued'`),
  clearAfter: sql('flowClearAfter', `UPDATE flow_runs SET after_run_id = NULL WHERE run_id = $1`),
};

/** What the flow rules need of the driver besides statements. */
export interface FlowDriver {
  /** A value as a JSON column parameter (see LedgerTx.json). */
  json(value: unknown): string;
  /** Creates the run as usual. */
  create(req: CreateRunRequest): CreatedRun | Promise<CreatedRun>;
  /** The input of run `id` changed, or may still change (debounce): SQLite drops its cached run header. */
  changed?(id: string): void;
}

/** A bucket row as state; PostgreSQL may return bigint columns as text. */
interface BucketRow {
  window_start: number | string;
  count: number | string;
  next_at: number | string;
  first_at: number | string;
  run_id: string | null;
}

/** The state of a bucket, locked until the transaction ends (created empty on first use). */
export function* lockBucket(pipeline: string, rule: string, key: string): Rule<BucketState> {
  yield* run(S.ensureBucket, [pipeline, rule, key]);
  const row = yield* get<BucketRow>(S.bucket, [pipeline, rule, key]);
  if (!row) return { ...EMPTY_BUCKET };
  return { windowStart: Number(row.window_start), count: Number(row.count), nextAt: Number(row.next_at), firstAt: Number(row.first_at), runId: row.run_id };
}

export function* saveBucket(pipeline: string, rule: string, key: string, s: BucketState): Rule<void> {
  yield* run(S.saveBucket, [pipeline, rule, key, s.windowStart, s.count, s.nextAt, s.firstAt, s.runId]);
}

/** A run's status and start time, as the flow rules see it. */
export function* runState(id: string): Rule<{ status: string; runAt: number } | undefined> {
  const row = yield* get<{ status: string; run_at: number }>(S.runState, [id]);
  return row && { status: row.status, runAt: Number(row.run_at) };
}

/** Run `id` as a start answers an existing run (created: false). */
export function* existingRun(id: string): Rule<CreatedRun> {
  return { run: toRunRecord((yield* getRun(id))!), created: false, events: [] };
}

/** Creates the run of `req` with the driver. */
export function* createRun(d: FlowDriver, req: CreateRunRequest): Rule<CreatedRun> {
  const created = yield* call(() => d.create(req));
  // The run's input may still change (debounce): this process must read it again when it claims the run.
  d.changed?.(created.run.id);
  return created;
}

/** Moves a created run's start (and its first attempts) to `runAt`. */
export function* delayRun(id: string, runAt: number): Rule<RunRecord> {
  yield* run(S.delayNewAttempts, [id, runAt]);
  return toRunRecord((yield* get<RunRow>(S.delayRun, [id, runAt]))!);
}

/**
 * Gives a pending debounced run the latest input and start time; undefined when it has started meanwhile (or, with
 * `previous`, when its input is no longer that).
 */
export function* absorbRun(d: FlowDriver, id: string, input: unknown, runAt: number, absorbed: number, previous?: { input: unknown }): Rule<CreatedRun | undefined> {
  // The attempts first, in the order a claim locks rows: a claim holding them makes this wait, then find none.
  if ((yield* run(S.delayAttempts, [id, runAt])) === 0) return undefined;
  const row = previous
    ? yield* get<RunRow>(S.absorbRunIf, [id, d.json(input), runAt, d.json(previous.input)])
    : yield* get<RunRow>(S.absorbRun, [id, d.json(input), runAt]);
  if (!row) return undefined;
  d.changed?.(id);
  yield* markRun(id, absorbed, null);
  return { run: toRunRecord(row), created: false, events: [] };
}

/** Records what the flow rules did to run `id`: requests absorbed (debounce), the run it waits for (singleton queue). */
export function* markRun(id: string, absorbed: number | null, after: string | null): Rule<void> {
  yield* run(S.markRun, [id, absorbed, after]);
}

/** Whether any run waits behind another (singleton queue): when none, releasing needs no write transaction. */
export function* anyHeldRuns(): Rule<boolean> {
  return (yield* get(S.anyHeld, [])) !== undefined;
}

/** Releases the runs a singleton queue held behind a run that has ended; returns their ids. */
export function* releaseHeldRuns(now: number): Rule<string[]> {
  const ids = (yield* all<{ run_id: string }>(S.releasable, [])).map((r) => r.run_id);
  for (const id of ids) {
    yield* run(S.delayNewAttempts, [id, now]);
    yield* run(S.releaseRun, [id, now]);
    yield* run(S.clearAfter, [id]);
  }
  return ids;
}

/** The pending (not started) run of a debounce bucket, with its input. */
export function* pendingDebounce(pipeline: string, key: string): Rule<{ runId: string; input: unknown } | undefined> {
  const row = yield* get<{ run_id: string; input: string }>(S.pendingDebounce, [pipeline, key]);
  return row && { runId: row.run_id, input: JSON.parse(row.input) as unknown };
}

/** What the flow rules did to run `id`. */
export function* runFlow(id: string): Rule<RunFlow | undefined> {
  const row = yield* get<{ absorbed: number | null; after_run_id: string | null }>(S.runFlow, [id]);
  return row && { absorbed: row.absorbed, afterRunId: row.after_run_id };
}

/**
 * Locks, in one sorted order, every bucket the flow requests of a batch will read: two PostgreSQL transactions that
 * each create runs of several buckets then never wait for each other in a cycle (a deadlock). A lone request needs none.
 */
export function* lockBatchBuckets(requests: CreateRunRequest[]): Rule<void> {
  const buckets = new Map<string, [string, string, string]>();
  for (const req of requests) {
    for (const [rule, key] of Object.entries(req.flow?.keys ?? {})) buckets.set(JSON.stringify([req.pipeline.name, rule, key]), [req.pipeline.name, rule, key]);
  }
  if (requests.length < 2 || buckets.size < 2) return;
  for (const id of [...buckets.keys()].sort()) yield* lockBucket(...buckets.get(id)!);
}
