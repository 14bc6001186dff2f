/**
 * Creating a run and spawning a child run, written once for both backends: the run's row, its planned steps,
 * its first attempts and its creation events, in the caller's transaction. A driver may batch the rows of many
 * runs itself (PostgreSQL's bulk create) through {@link CreateHooks.defer}.
 */
import { initiallyReady, planRun } from '../../core/scheduler.js';
import { runConcurrencyKeys } from '../concurrency-keys.js';
import { checkSameRequest, IDEMPOTENCY_WINDOW_MS, runRequestHash } from '../idempotency.js';
import { newRunId } from '../ids.js';
import { toRunRecord, toStoredPipeline, type PipelineRow, type RunRow } from '../rows.js';
import { SHARED } from '../shared-sql.js';
import type { AttemptResult, CreatedRun, CreateRunRequest, EventType, RunEvent } from '../store.js';
import { call, get, lockKey, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';
import { recordFailure } from './outcomes.js';
import { finishIfDone, getRun } from './transitions.js';
import { insertAttempt } from './attempt-rows.js';

const S = {
  // Concurrent requests with one idempotency key queue here (PostgreSQL), so the second sees the first's run. A
  // SQLite write transaction is alone already.
  idempotent: sql('createIdempotent', `SELECT * FROM runs WHERE pipeline = $1 AND idempotency_key = $2`),
  clearIdempotency: sql('createClearIdempotency', `UPDATE runs SET idempotency_key = NULL WHERE id = $1`),
  setIdempotencyHash: sql('createSetIdempotencyHash', `UPDATE runs SET idempotency_hash = $2 WHERE id = $1`),
  insertRun: sql(
    'createInsertRun',
    `INSERT INTO runs (id, pipeline, version, status, input, priority, force, max_parallel, selection,
       idempotency_key, remaining, active, failed, run_at, deadline_at, created_at, parent_run_id, parent_step)
     VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13, $14, $15, $16)`,
  ),
  setConcurrencyKeys: sql('createSetConcurrencyKeys', `UPDATE runs SET concurrency_keys = $2::jsonb WHERE id = $1`),
  setTraceparent: sql('createSetTraceparent', `UPDATE runs SET traceparent = $2 WHERE id = $1`),
  // $1 run id $2 JSON array of [name, seq, status, waiting_on, priority, attempts, attempt_status, attempt_priority,
  // attempt_force, available_at, queued_at]: every step in one statement, a ready one with its first attempt
  insertSteps: sql('createInsertSteps', {
    sqlite: `INSERT INTO steps (run_id, name, seq, status, waiting_on, priority, attempts, attempt_status, attempt_priority, attempt_force, available_at, queued_at)
             SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, COALESCE(value ->> 7, 0), COALESCE(value ->> 8, 0),
               value ->> 9, value ->> 10 FROM json_each($2)`,
    pg: `INSERT INTO steps (run_id, name, seq, status, waiting_on, priority, attempts, attempt_status, attempt_priority, attempt_force, available_at, queued_at)
         SELECT $1, r ->> 0, (r ->> 1)::int, r ->> 2, (r ->> 3)::int, (r ->> 4)::int, (r ->> 5)::int, r ->> 6, COALESCE((r ->> 7)::int, 0), COALESCE((r ->> 8)::smallint, 0),
           (r ->> 9)::bigint, (r ->> 10)::bigint FROM jsonb_array_elements($2::jsonb) AS r`,
  }),
  setStepOutput: sql('spawnSetStepOutput', `UPDATE steps SET output = $3::jsonb WHERE run_id = $1 AND name = $2`),
};

/** A new run planned in memory: its row, its steps and first attempts, and its creation events (ids not known yet). */
export interface PlannedRun {
  run: RunRow;
  /** The values of the run's insert, in column order ($1 ... $16 of insertRun). */
  runValues: unknown[];
  planned: ReturnType<typeof planRun>;
  ready: ReturnType<typeof initiallyReady>;
  /** The status of each planned step as created: its first attempt's steps are queued. */
  statuses: string[];
  /** The run's rendered concurrency keys (JSON text), or null when no step has one. */
  keys: string | null;
  events: RunEvent[];
}

/** Plans a run (pure): `json` encodes a value for the driver's JSON columns. */
export function planNewRun(req: CreateRunRequest, now: number, json: (value: unknown) => string): PlannedRun {
  const p = req.pipeline;
  const planned = planRun(p.definition, req.selection ? new Set(req.selection) : null);
  const maxParallel = req.maxParallel ?? p.definition.maxParallel;
  const ready = initiallyReady(planned).slice(0, maxParallel);
  const readyNames = new Set(ready.map((s) => s.name));
  const runAt = Math.max(req.runAt ?? now, now);
  const run: RunRow = {
    id: req.id ?? newRunId(now),
    pipeline: p.name,
    version: p.version,
    status: 'queued',
    input: json(req.input),
    priority: req.priority ?? 0,
    force: req.force ? 1 : 0,
    max_parallel: maxParallel,
    selection: req.selection ? json(req.selection) : null,
    idempotency_key: req.idempotencyKey ?? null,
    remaining: planned.filter((s) => s.status === 'pending').length,
    active: ready.length,
    failed: 0,
    error: null,
    run_at: runAt,
    deadline_at: p.definition.timeoutMs === null ? null : runAt + p.definition.timeoutMs,
    created_at: now,
    started_at: null,
    finished_at: null,
    parent_run_id: req.parent?.runId ?? null,
    parent_step: req.parent?.step ?? null,
  };
  const r = run;
  const runValues = [r.id, r.pipeline, r.version, r.input, r.priority, r.force, r.max_parallel, r.selection, r.idempotency_key, r.remaining, r.active, r.run_at, r.deadline_at, r.created_at, r.parent_run_id, r.parent_step];
  const event = (type: EventType, step: string | null, data: Record<string, unknown> | null): RunEvent => ({ id: 0, runId: run.id, pipeline: run.pipeline, step, type, data, at: now });
  const events = [event('run.queued', null, null)];
  for (const s of planned) if (s.status === 'skipped') events.push(event('step.skipped', s.name, { reason: 'not selected or disabled' }));
  for (const s of ready) events.push(event('step.queued', s.name, { attempt: 1 }));
  const statuses = planned.map((s) => (readyNames.has(s.name) ? 'queued' : s.status));
  return { run, runValues, planned, ready, statuses, keys: runConcurrencyKeys(p.definition, req.concurrencyKeys), events };
}

/** What a driver may add to run creation. */
export interface CreateHooks {
  /** Takes the rows of a planned run to write them later with others (true), or leaves them to the rule (false). */
  defer?(plan: PlannedRun, req: CreateRunRequest): boolean;
  /** Writes the rows deferred so far (before a run that ends at once is read back). */
  flush?(): void | Promise<void>;
  /** A run was created (its row is written or deferred). */
  created?(run: RunRow): void;
}

/**
 * The run that the request's idempotency key names, if it was created within the idempotency window (it must be
 * the same request: IDEMPOTENCY_CONFLICT otherwise). An older run with the key gives it up. Holds the key's lock
 * until commit (PostgreSQL), so that a second request with the key sees the first one's run.
 */
export function* idempotentRun(req: CreateRunRequest, now: number): Rule<CreatedRun | undefined> {
  if (req.idempotencyKey === undefined) return undefined;
  const pipeline = req.pipeline.name;
  yield* lockKey(`idempotency:${pipeline}:${req.idempotencyKey}`);
  const existing = yield* get<RunRow>(S.idempotent, [pipeline, req.idempotencyKey]);
  if (!existing) return undefined;
  if (existing.created_at > now - IDEMPOTENCY_WINDOW_MS) {
    checkSameRequest(existing, req, runRequestHash(req));
    return { run: toRunRecord(existing), created: false, events: [] };
  }
  yield* exec(S.clearIdempotency, [existing.id]);
  return undefined;
}

/** Creates a run with its steps and first attempts, or returns the run its idempotency key names. */
export function* createRun(tx: LedgerTx, req: CreateRunRequest, now: number, hooks: CreateHooks = {}): Rule<CreatedRun> {
  const existing = yield* idempotentRun(req, now);
  if (existing) return existing;
  const plan = planNewRun(req, now, (v) => tx.json(v));
  const { run } = plan;
  if (!hooks.defer?.(plan, req)) yield* writeRun(tx, req, plan, now);
  hooks.created?.(run);
  const events: RunEvent[] = [];
  for (const e of plan.events) tx.emit(events, run, e.type, e.step, now, e.data ?? undefined);
  if (run.remaining > 0) return { run: toRunRecord(run), created: true, events };
  // Nothing to run (every step skipped): the run ends at once.
  if (hooks.flush) yield* call(() => hooks.flush!());
  yield* finishIfDone(tx, events, run, now);
  return { run: toRunRecord((yield* getRun(run.id))!), created: true, events };
}

/** Writes a planned run: its row, keys, idempotency hash and trace, its steps and its first attempts. */
function* writeRun(tx: LedgerTx, req: CreateRunRequest, plan: PlannedRun, now: number): Rule<void> {
  const { run, planned, ready, statuses, keys } = plan;
  yield* exec(S.insertRun, plan.runValues);
  if (keys !== null) yield* exec(S.setConcurrencyKeys, [run.id, keys]);
  if (req.idempotencyKey !== undefined) yield* exec(S.setIdempotencyHash, [run.id, runRequestHash(req)]);
  if (req.traceparent !== undefined) yield* exec(S.setTraceparent, [run.id, req.traceparent]);
  // A new run is never paused: its first attempts are queued, on their steps' rows. Those of a run with concurrency
  // keys read the run's rendered keys (insertAttempt).
  const inline = keys === null;
  const first = new Set(ready.map((s) => s.name));
  const steps = planned.map((s, i) => {
    const row = [s.name, s.seq, statuses[i], s.waitingOn, s.priority, first.has(s.name) ? 1 : 0];
    return inline && first.has(s.name) ? [...row, 'queued', run.priority + s.priority, run.force, run.run_at, now] : row;
  });
  yield* exec(S.insertSteps, [run.id, tx.json(steps)]);
  if (!inline) for (const s of ready) yield* insertAttempt(tx, run, s.name, { number: 1, at: now, availableAt: run.run_at, priority: s.priority });
}

/**
 * A `pipeline` step starts its child run in the same transaction; the step stays running (holding no lease) until
 * the child ends (see endChild). A pipeline that is not registered fails the step.
 */
export function* spawnChild(tx: LedgerTx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[], hooks: CreateHooks = {}): Rule<void> {
  const request = r.spawn!;
  const child = yield* get<PipelineRow>(SHARED.latestPipeline, [request.pipeline]);
  if (!child) {
    const error = { code: 'PIPELINE_NOT_FOUND' as const, message: `step ${step} runs pipeline ${request.pipeline}, which is not registered`, retryable: false };
    yield* recordFailure(tx, run, step, number, { ...r, outcome: 'failed', error, retryable: false }, now, events);
    return;
  }
  const traced = request.traceparent === undefined ? {} : { traceparent: request.traceparent };
  const created = yield* createRun(tx, { pipeline: toStoredPipeline(child), input: request.input, parent: { runId: run.id, step }, ...traced }, now, hooks);
  yield* exec(S.setStepOutput, [run.id, step, tx.json({ child_run: created.run.id })]);
  events.push(...created.events);
  tx.wake();
}
