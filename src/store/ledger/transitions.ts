/**
 * The scheduling rules of one run, written once for both backends: settling a step, queueing what became ready,
 * failing fast, cancelling and finishing, rebuilding counters after a rewind. Each rule runs inside the caller's
 * transaction (which holds the run) and appends an event for every transition.
 */
import type { ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import type { RunStatus, StepStatus } from '../../core/model.js';
import { needIsSettled } from '../../core/scheduler.js';
import { abortScope, failedForGood } from '../../core/step-policy.js';
import { runStatesInto, stepStatesInto } from '../../core/state-machine.js';
import type { RunRow, StepRow } from '../rows.js';
import { SHARED } from '../shared-sql.js';
import { stepsFailedError, type FailedStepRow } from '../run-failure.js';
import type { EventType, RunEvent } from '../store.js';
import { all, call, get, run as exec, sql, type Rule, type Statement } from './effects.js';
import type { CompiledPipeline, EndStatus, LedgerTx, StoredError } from './ledger-tx.js';
import type { AttemptsOfRun, QueuedStep } from './queue-ready.js';
import { cancelStepAttempts, insertAttempt } from './attempt-rows.js';

const STEPS_FAILED: StoredError = { code: 'STEP_FAILED', message: 'one or more steps failed' };

/** The run error of a run that ends because steps failed, as stored until the rules name the step. */
export const STEPS_FAILED_JSON = JSON.stringify(STEPS_FAILED);

/** A run in these states ends when its last step settles (a paused run ends on resume). */
const ENDABLE = ['queued', 'running'].filter((s) => runStatesInto('succeeded').includes(s as RunStatus) && runStatesInto('failed').includes(s as RunStatus));

export const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/**
 * SQL condition, over the row before the update, that a settle update adding `active` and `remaining` (SQL
 * expressions) ends the run. RETURNING sees the row after it; a run whose remaining count just reached 0
 * cannot have ended before (it had a step left).
 */
export function finishingWhen(active: string, remaining: string): string {
  return `remaining + ${remaining} = 0 AND active + ${active} = 0 AND status IN (${inList(ENDABLE)})`;
}

/**
 * The same test as {@link finishingWhen}, in memory, over a run's state read under its lock: whether a settle that
 * adds `active` and `remaining` ends the run.
 */
export function settleEnds(run: Pick<RunState, 'status' | 'active' | 'remaining'>, active: number, remaining: number): boolean {
  return run.remaining + remaining === 0 && run.active + active === 0 && ENDABLE.includes(run.status);
}

/** The columns of a run that scheduling reads back after changing its counters (not its input or error). */
export const RUN_STATE = 'id, pipeline, version, status, priority, force, max_parallel, remaining, active, failed, run_at, parent_run_id';

/** A run as {@link RUN_STATE} returns it. */
export type RunState = Pick<RunRow, 'id' | 'pipeline' | 'version' | 'status' | 'priority' | 'force' | 'max_parallel' | 'remaining' | 'active' | 'failed' | 'run_at' | 'parent_run_id'>;

/** A run's state after a settle update, and whether that update ended it (0/1 on SQLite, a boolean on PostgreSQL). */
export type SettledRun = RunState & { finished: number | boolean };

/** Frees a step's slot and counts it done in the runs matching `where`; ends a run whose last step this was. */
export const settleCountersWhere = (where: string, active: string, remaining: string, at: string) => {
  const finishing = finishingWhen(active, remaining);
  return `UPDATE runs SET active = active + ${active}, remaining = remaining + ${remaining},
      status = CASE WHEN ${finishing} THEN (CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END) ELSE status END,
      error = CASE WHEN ${finishing} AND failed > 0 THEN '${STEPS_FAILED_JSON}'::jsonb ELSE error END,
      finished_at = CASE WHEN ${finishing} THEN ${at} ELSE finished_at END
    WHERE ${where}
    RETURNING ${RUN_STATE}, (remaining = 0 AND active = 0 AND finished_at = ${at} AND status IN ('succeeded', 'failed')) AS finished`;
};

const S = {
  run: sql('run', `SELECT * FROM runs WHERE id = $1`),
  // PostgreSQL holds the row until commit; a SQLite write transaction is alone already.
  lockRun: sql('lockRun', { sqlite: `SELECT * FROM runs WHERE id = $1`, pg: `SELECT * FROM runs WHERE id = $1 FOR UPDATE` }),
  step: sql('step', `SELECT * FROM steps WHERE run_id = $1 AND name = $2`),
  clearStepItems: sql('clearStepItems', `DELETE FROM step_items WHERE run_id = $1 AND step = $2`),
  addCounters: sql('addCounters', `UPDATE runs SET active = active + $2, remaining = remaining + $3, failed = failed + $4 WHERE id = $1 RETURNING ${RUN_STATE}`),
  // SQLite rewrites the entries of every index over a column that an UPDATE assigns, changed or not: assigning
  // `status` on every settle rewrote the run's entry in runs_by_status_created (a page written per step). There the
  // counters are updated alone, and a run left with nothing to do is ended by finishRun.
  settleCounters: sql('settleCounters', {
    sqlite: `UPDATE runs SET active = active + $2, remaining = remaining + $3 WHERE id = $1 RETURNING ${RUN_STATE}, 0 AS finished`,
    pg: settleCountersWhere('id = $1', '$2', '$3', '$4::bigint'),
  }),
  // $1 run id $2 now: ends a run whose steps all settled (on SQLite, after settleCounters)
  finishRun: sql(
    'finishRun',
    `UPDATE runs SET status = CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END,
       error = CASE WHEN failed > 0 THEN '${STEPS_FAILED_JSON}'::jsonb ELSE error END, finished_at = $2
     WHERE id = $1 AND remaining = 0 AND active = 0 AND status IN (${inList(ENDABLE)})
     RETURNING ${RUN_STATE}, TRUE AS finished`,
  ),
  decrementWaiting: sql('decrementWaiting', `UPDATE steps SET waiting_on = waiting_on - 1 WHERE run_id = $1 AND name = $2 AND status = 'pending'`),
  // Steps in step order, so that their `step.cancelled` events come out alike on every backend.
  unstartedSteps: sql('unstartedSteps', `SELECT name, status FROM steps WHERE run_id = $1 AND status IN ('pending', 'queued', 'retrying', 'waiting') ORDER BY seq`),
  liveSteps: sql('liveSteps', `SELECT name, status FROM steps WHERE run_id = $1 AND status IN ('pending', 'queued', 'retrying', 'running', 'blocked', 'waiting') ORDER BY seq`),
  cancelStep: sql('cancelStep', `UPDATE steps SET status = 'cancelled', finished_at = $3 WHERE run_id = $1 AND name = $2 AND status IN (${inList(stepStatesInto('cancelled'))})`),
  // Live child runs (of `pipeline` steps); PostgreSQL locks them, in id order.
  liveChildren: sql('liveChildren', {
    sqlite: `SELECT * FROM runs WHERE parent_run_id = $1 AND status IN ('queued', 'running', 'paused', 'waiting') ORDER BY id`,
    pg: `SELECT * FROM runs WHERE parent_run_id = $1 AND status IN ('queued', 'running', 'paused', 'waiting') ORDER BY id FOR UPDATE`,
  }),
  setWaiting: sql('setWaiting', `UPDATE steps SET waiting_on = $3 WHERE run_id = $1 AND name = $2`),
  // The steps that failed, in the order they failed.
  failedSteps: sql('failedSteps', `SELECT name, error FROM steps WHERE run_id = $1 AND status = 'failed' ORDER BY finished_at, seq`),
  setRunError: sql('setRunError', `UPDATE runs SET error = $2::jsonb WHERE id = $1`),
  setCounters: sql('setCounters', `UPDATE runs SET active = $2, remaining = $3, failed = $4 WHERE id = $1 RETURNING ${RUN_STATE}`),
};

const setRunStatusStmts = new Map<RunStatus, Statement>();

/** Moves a run to `to`, only from states that may enter it. */
function setRunStatusStmt(to: RunStatus): Statement {
  let s = setRunStatusStmts.get(to);
  if (!s) {
    s = sql(
      `setRunStatus_${to}`,
      `UPDATE runs SET status = '${to}', error = COALESCE($2::jsonb, error),
         finished_at = CASE WHEN '${to}' IN ('succeeded','failed','cancelled') THEN $3::bigint ELSE NULL END
       WHERE id = $1 AND status IN (${inList(runStatesInto(to))})`,
    );
    setRunStatusStmts.set(to, s);
  }
  return s;
}

type RunRef = Pick<RunRow, 'id' | 'pipeline' | 'version'>;

export function* pipelineOf(tx: LedgerTx, run: Pick<RunRow, 'pipeline' | 'version'>): Rule<CompiledPipeline> {
  return yield* call(() => tx.pipelineOf(run));
}

export function* getRun(id: string): Rule<RunRow | undefined> {
  return yield* get<RunRow>(S.run, [id]);
}

/** The run's row, locked until commit on PostgreSQL. */
export function* lockRun(id: string): Rule<RunRow | undefined> {
  return yield* get<RunRow>(S.lockRun, [id]);
}

export function* getStep(runId: string, name: string): Rule<StepRow | undefined> {
  return yield* get<StepRow>(S.step, [runId, name]);
}

/** Forgets a step's per-item results (it runs again from the first item). */
export function* clearStepItems(runId: string, name: string): Rule<void> {
  yield* exec(S.clearStepItems, [runId, name]);
}

export function* addCounters(id: string, delta: { active?: number; remaining?: number; failed?: number }): Rule<RunState> {
  return (yield* get<RunState>(S.addCounters, [id, delta.active ?? 0, delta.remaining ?? 0, delta.failed ?? 0]))!;
}

/** Options of {@link setRunStatus}: the run's error, and the event to emit instead of `run.<to>`. */
export interface StatusOptions {
  error?: ErrorRecord;
  event?: EventType;
  data?: Record<string, unknown>;
}

/** Moves the run to `to` if the transition table allows it; emits `run.<to>` (or the given event). */
export function* setRunStatus(tx: LedgerTx, out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, to: RunStatus, at: number, opts: StatusOptions = {}): Rule<boolean> {
  const changed = (yield* exec(setRunStatusStmt(to), [run.id, opts.error ? tx.json(opts.error) : null, at])) > 0;
  if (changed) tx.emit(out, run, opts.event ?? (`run.${to}` as EventType), null, at, opts.data ?? (opts.error ? { error: opts.error } : undefined));
  return changed;
}

/** Queues ready steps up to the run's max_parallel; returns the run with its counters updated. */
export function* promote(tx: LedgerTx, out: RunEvent[], run: RunState, at: number): Rule<RunState> {
  const { queued } = yield* queueReadySteps(tx, out, run, at);
  return queued === 0 ? run : yield* addCounters(run.id, { active: queued });
}

/** What {@link queueReadySteps} queued, and whether it added the settle's counters and what it queued to the run's. */
export interface Queued {
  queued: number;
  counted: boolean;
}

/**
 * {@link promote} without its counter update: queues the ready steps that fit in `run` (its state as it stands)
 * and returns how many it queued, which the caller adds to the run's active count. With `settle` (a settle's
 * changes to the run's active and remaining counts), a driver that queues with the attempts adds both to the run's
 * counters in the same statement, and says so (`counted`).
 */
export function* queueReadySteps(tx: LedgerTx, out: RunEvent[], run: RunState, at: number, settle?: { active: number; remaining: number }): Rule<Queued> {
  const none = { queued: 0, counted: false };
  // A waiting run (a step awaits a human) goes on with its independent branches.
  if (run.status !== 'running' && run.status !== 'queued' && run.status !== 'waiting') return none;
  const slots = run.max_parallel - run.active;
  // remaining counts every unfinished step; when all of them are active, none is pending.
  if (slots <= 0 || run.remaining <= run.active) return none;
  const compiled = yield* pipelineOf(tx, run);
  if (run.failed > 0 && compiled.definition.failFast) return none;
  // A driver may make the attempts as it queues (PostgreSQL: one round trip for both), not those of keyed steps.
  const withAttempts = tx.queuesWithAttempts && !compiled.keyed;
  const attempts: AttemptsOfRun | undefined = withAttempts ? { priority: run.priority, force: run.force, availableAt: Math.max(at, run.run_at), at, counters: settle } : undefined;
  const ready = yield* tx.queueReady(run.id, { slots, attempts });
  yield* queueAttempts(tx, out, run, compiled, ready, at);
  return { queued: ready.length, counted: withAttempts && settle !== undefined };
}

/** Makes the first attempt (or the next) of steps just marked queued, in their order. */
function* queueAttempts(tx: LedgerTx, out: RunEvent[], run: RunState, compiled: CompiledPipeline, ready: readonly QueuedStep[], at: number): Rule<void> {
  for (const row of ready) {
    if (row.attempted) {
      tx.emit(out, run, 'step.queued', row.name, at, { attempt: row.attempts });
      continue;
    }
    const priority = compiled.byName.get(row.name)?.priority ?? 0;
    const marks = row.unmarked === true;
    yield* insertAttempt(tx, run, row.name, { number: row.attempts, at, availableAt: Math.max(at, run.run_at), priority, force: row.force === 1, feedback: row.feedback, marks });
    tx.emit(out, run, 'step.queued', row.name, at, { attempt: row.attempts });
  }
}

/** One need of each step that needs `step` is settled. */
export function* releaseDependents(tx: LedgerTx, run: RunRef, step: string): Rule<void> {
  const dependents = (yield* pipelineOf(tx, run)).dependents.get(step);
  if (dependents) for (const dependent of dependents) yield* exec(S.decrementWaiting, [run.id, dependent]);
}

/**
 * A step reached a state that lets dependents proceed (succeeded, cached, skipped, or failed with
 * on_failure: continue): release its dependents, queue what became ready into the run's free slots and the one this
 * step frees, then free its slot, count it done and count what was queued, in one update of the run's counters.
 */
export function* settle(tx: LedgerTx, out: RunEvent[], run: RunRef, step: string, at: number, wasActive = true): Rule<void> {
  yield* releaseDependents(tx, run, step);
  const compiled = yield* pipelineOf(tx, run);
  const freed = wasActive ? 1 : 0;
  const ready = yield* tx.queueReady(run.id, { freed, failFast: compiled.definition.failFast });
  let row = (yield* get<SettledRun>(S.settleCounters, [run.id, ready.length - freed, -1, at]))!;
  // A run that queued a step has one left: it did not end.
  if (ready.length > 0) {
    yield* queueAttempts(tx, out, row, compiled, ready, at);
    return;
  }
  // PostgreSQL's settle statement ends the run itself; SQLite's leaves that to finishRun.
  if (!row.finished && settleEnds(row, 0, 0)) row = (yield* get<SettledRun>(S.finishRun, [run.id, at]))!;
  if (row.finished) yield* endSettled(tx, out, row, at);
}

/** After steps settled (`row`: the run's counters after): ends the run, or queues what became ready. */
export function* afterSettle(tx: LedgerTx, out: RunEvent[], row: SettledRun, at: number): Rule<void> {
  if (row.finished) yield* endSettled(tx, out, row, at);
  else yield* promote(tx, out, row, at);
}

/** The last step of a run settled (`row`: the run's state after, ended by the settle update): the run's end. */
function* endSettled(tx: LedgerTx, out: RunEvent[], row: SettledRun, at: number): Rule<void> {
  let data: Record<string, unknown> | undefined;
  if (row.failed > 0) {
    // The settle statement stored a generic error; the run's error names the step that failed it.
    const error = yield* failureOf(tx, row);
    yield* exec(S.setRunError, [row.id, tx.json(error)]);
    data = { error };
  }
  tx.emit(out, row, `run.${row.status}` as EventType, null, at, data);
  yield* ended(tx, out, row, row.status as 'succeeded' | 'failed', at);
}

/**
 * A step failed for good (no retry left): per the step policy, its dependents go on (`on_failure: continue`) or
 * it fails the run.
 */
export function* failedForGoodStep(tx: LedgerTx, out: RunEvent[], run: RunRef, step: string, at: number, wasActive = true): Rule<void> {
  const compiled = yield* pipelineOf(tx, run);
  const action = failedForGood(compiled.byName.get(step) ?? { onFailure: 'abort' }, compiled.definition.failFast);
  if (action.kind === 'continue') yield* settle(tx, out, run, step, at, wasActive);
  else yield* abort(tx, out, run, step, at, wasActive, action.cancel);
}

/**
 * A step failed for good with on_failure: abort. `cancel` says which unstarted steps are cancelled (default: the
 * step policy's scope for the pipeline's `fail_fast`).
 */
export function* abort(tx: LedgerTx, out: RunEvent[], run: RunRef, step: string, at: number, wasActive = true, cancel?: 'all' | 'downstream'): Rule<void> {
  const compiled = yield* pipelineOf(tx, run);
  let row = yield* addCounters(run.id, { active: wasActive ? -1 : 0, remaining: -1, failed: 1 });
  if ((cancel ?? abortScope(compiled.definition.failFast)) === 'all') {
    row = yield* cancelSteps(tx, out, row, null, at);
  } else {
    const downstream = descendants(compiled.definition, step);
    downstream.delete(step);
    row = yield* promote(tx, out, yield* cancelSteps(tx, out, row, downstream, at), at);
  }
  yield* finishIfDone(tx, out, row, at);
}

/** Cancels steps that have not started (all of them, or those in `only`), in step order. */
export function* cancelSteps(tx: LedgerTx, out: RunEvent[], run: RunState, only: Set<string> | null, at: number, includeRunning = false): Rule<RunState> {
  const rows = yield* all<{ name: string; status: StepStatus }>(includeRunning ? S.liveSteps : S.unstartedSteps, [run.id]);
  let active = 0;
  let remaining = 0;
  for (const { name, status } of rows) {
    if (only && !only.has(name)) continue;
    if ((yield* exec(S.cancelStep, [run.id, name, at])) === 0) continue;
    yield* cancelStepAttempts(run.id, name, at);
    remaining += 1;
    if (status !== 'pending' && status !== 'blocked') active += 1;
    tx.emit(out, run, 'step.cancelled', name, at);
  }
  return remaining > 0 ? yield* addCounters(run.id, { active: -active, remaining: -remaining }) : run;
}

/** Ends the run when no step is left: failed if any step failed with abort, succeeded otherwise. */
export function* finishIfDone(tx: LedgerTx, out: RunEvent[], run: RunState, at: number): Rule<void> {
  if (run.remaining > 0 || run.active > 0) return;
  if (run.status !== 'running' && run.status !== 'queued') return;
  const to = run.failed > 0 ? 'failed' : 'succeeded';
  const opts = run.failed > 0 ? { error: yield* failureOf(tx, run) } : {};
  if (yield* setRunStatus(tx, out, run, to, at, opts)) yield* ended(tx, out, run, to, at);
}

/** The error of a run that failed because steps failed: names the first one and its error. */
export function* failureOf(tx: LedgerTx, run: RunRef): Rule<ErrorRecord> {
  const failed = yield* all<FailedStepRow>(S.failedSteps, [run.id]);
  return stepsFailedError(failed, (yield* pipelineOf(tx, run)).byName);
}

/** Ends a run now as cancelled or failed: every live step and attempt is cancelled, and its live child runs. */
export function* terminate(tx: LedgerTx, out: RunEvent[], run: RunState, to: 'cancelled' | 'failed', at: number, error?: ErrorRecord): Rule<void> {
  yield* cancelSteps(tx, out, run, null, at, true);
  if (!(yield* setRunStatus(tx, out, run, to, at, error ? { error } : {}))) return;
  // Child runs of `pipeline` steps end with their parent.
  for (const child of yield* all<RunRow>(S.liveChildren, [run.id])) yield* terminate(tx, out, child as RunState, 'cancelled', at);
  yield* ended(tx, out, run, to, at);
}

/** Tells the driver that a child run ended (a run without a parent needs nothing; a row without the column still tells). */
function* ended(tx: LedgerTx, out: RunEvent[], run: Pick<RunRow, 'id' | 'parent_run_id'>, status: EndStatus, at: number): Rule<void> {
  if (run.parent_run_id !== null) yield* call(() => tx.childEnded(out, run.id, status, at));
}

/**
 * Recomputes waiting counts and run counters from the step rows, after steps were put back to pending by
 * retry, rollback or a gate's rewind; then queues what is ready.
 */
export function* rebuild(tx: LedgerTx, out: RunEvent[], runId: string, at: number): Rule<void> {
  const run = (yield* getRun(runId))!;
  const { byName } = yield* pipelineOf(tx, run);
  const rows = yield* all<StepRow>(SHARED.steps, [runId]);
  const statusOf = new Map(rows.map((r) => [r.name, r.status]));
  let active = 0;
  let remaining = 0;
  let failed = 0;
  for (const row of rows) {
    const step = byName.get(row.name);
    if (row.status === 'pending' && step) {
      const waiting = step.needs.filter((n) => !needIsSettled(statusOf.get(n) ?? 'pending', byName.get(n))).length;
      yield* exec(S.setWaiting, [runId, row.name, waiting]);
    }
    if (['queued', 'running', 'retrying', 'waiting'].includes(row.status)) active += 1;
    if (!['succeeded', 'cached', 'skipped', 'failed', 'cancelled'].includes(row.status)) remaining += 1;
    if (row.status === 'failed' && step?.onFailure !== 'continue') failed += 1;
  }
  const updated = (yield* get<RunState>(S.setCounters, [runId, active, remaining, failed]))!;
  yield* finishIfDone(tx, out, yield* promote(tx, out, updated, at), at);
}
