/**
 * The attempts the run-state rules make, written once for both backends. A step's live (or last) attempt is part
 * of its row (docs/store.md, "A step row holds its live attempt"): the next attempt of a step (queued, held while
 * its run is paused, or leased at once to the worker whose completion queued it) first moves the one the row
 * holds into `attempts`. Also here: cancelling a step's live attempt, and holding and releasing a paused run's
 * queued ones. The drivers' claims, heartbeats and results change the attempt columns too, on their own hot paths.
 */
import { stepStatesInto } from '../../core/state-machine.js';
import { get, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';
import { pipelineOf, type RunState } from './transitions.js';

/** The columns of a step's attempt, in the order of `attempts`' own (see {@link S.archive}). */
const ATTEMPT_COLUMNS = `attempt_status, attempt_priority, attempt_force, available_at, owner, fence, lease_expires_at, queued_at,
  attempt_started_at, attempt_finished_at, processing_ms, attempt_error, usage, attempt_feedback, concurrency_key, concurrency_limit`;
/** The columns of `attempts` that an archived attempt fills, in the order of {@link ATTEMPT_COLUMNS} after run, step and number. */
const ARCHIVED_COLUMNS = `run_id, step, number, status, priority, force, available_at, owner, fence, lease_expires_at, queued_at,
  started_at, finished_at, processing_ms, error, usage, feedback, concurrency_key, concurrency_limit`;
/** What a new attempt clears of the last one; its fence stays, as it only grows. */
const FRESH = `owner = NULL, lease_expires_at = NULL, attempt_started_at = NULL, attempt_finished_at = NULL, processing_ms = NULL,
  attempt_error = NULL, usage = NULL`;
/**
 * What a lease does to its step besides leasing the attempt: a step that may become running (queued, retrying, a
 * sleep woken) does, and keeps the time it first started. `now` names the parameter of the time; `row` qualifies the
 * step row's columns where the statement reads other rows too.
 */
export const startsStep = (now: string, row = 'steps') => {
  const starting = `${row}.status IN (${stepStatesInto('running').map((s) => `'${s}'`).join(', ')})`;
  return `status = CASE WHEN ${starting} THEN 'running' ELSE ${row}.status END,
    started_at = CASE WHEN ${starting} THEN COALESCE(${row}.started_at, ${now}) ELSE ${row}.started_at END`;
};

/**
 * What a result that settles its step (succeeded, cached, skipped) does to the step besides finishing the attempt, in
 * the same update of its row: a step still running takes the result's `status`, `output` and `cacheKey` at `now`
 * (each an expression of the statement); one a rule moved on since the lease keeps what it has. `row` as in
 * {@link startsStep}. Used by both drivers' finishes, one result or a batch.
 */
export const settlesStep = (v: { status: string; output: string; cacheKey: string; now: string }, row = 'steps') => {
  const running = `${row}.status = 'running'`;
  const set = (col: string, value: string) => `${col} = CASE WHEN ${running} THEN ${value} ELSE ${row}.${col} END`;
  return [set('status', v.status), set('output', v.output), set('cache_key', v.cacheKey), set('error', 'NULL'), set('finished_at', v.now)].join(', ');
};

/**
 * The statements that make a step's next attempt on its row, queued (or held) or leased at once: `mark` and
 * `markKeyed` are set first by the variant for a step picked ready and not yet marked queued, `markLeased` takes
 * the place of what a lease does to a step already marked.
 */
function queueStatements(mark: string, markKeyed: string, markLeased?: string) {
  const name = (key: string) => (mark ? `${key}Marking` : key);
  return {
    // $1 run id $2 step $3 status $4 priority $5 force $6 available_at $7 queued_at $8 feedback
    queue: sql(
      name('queueAttempt'),
      `UPDATE steps SET ${mark}attempt_status = $3, attempt_priority = $4, attempt_force = $5, available_at = $6, queued_at = $7, attempt_feedback = $8,
         ${FRESH}, concurrency_key = NULL, concurrency_limit = NULL
       WHERE run_id = $1 AND name = $2`,
    ),
    // $1 run id $2 step $3 status $4 priority $5 force $6 available_at $7 queued_at $8 feedback $9 the key's text $10 limit: an
    // attempt of a step with a concurrency_key takes the key its run rendered (the key's text when it has none)
    queueKeyed: sql(name('queueKeyedAttempt'), {
      sqlite: `UPDATE steps SET ${markKeyed}attempt_status = $3, attempt_priority = $4, attempt_force = $5, available_at = $6, queued_at = $7, attempt_feedback = $8,
                 ${FRESH}, concurrency_key = COALESCE((SELECT json_extract(concurrency_keys, '$.' || json_quote($2)) FROM runs WHERE id = $1), $9), concurrency_limit = $10
               WHERE run_id = $1 AND name = $2`,
      pg: `UPDATE steps SET ${markKeyed}attempt_status = $3, attempt_priority = $4, attempt_force = $5, available_at = $6, queued_at = $7, attempt_feedback = $8,
             ${FRESH}, concurrency_key = COALESCE((SELECT concurrency_keys ->> $2 FROM runs WHERE id = $1), $9), concurrency_limit = $10
           WHERE run_id = $1 AND name = $2`,
    }),
    // $1 run id $2 step $3 priority $4 force $5 available_at $6 queued_at $7 feedback $8 owner $9 now $10 lease until: an
    // attempt leased at once (see DirectLease), its step started, as a claim would
    queueLeased: sql(
      name('queueLeasedAttempt'),
      `UPDATE steps SET attempt_status = 'running', attempt_priority = $3, attempt_force = $4, available_at = $5, queued_at = $6, attempt_feedback = $7,
         owner = $8, fence = fence + 1, lease_expires_at = $10, attempt_started_at = $9, attempt_finished_at = NULL, processing_ms = NULL,
         attempt_error = NULL, usage = NULL, concurrency_key = NULL, concurrency_limit = NULL,
         ${markLeased ?? startsStep('$9')}
       WHERE run_id = $1 AND name = $2 RETURNING id, fence`,
    ),
  };
}

/**
 * PostgreSQL's queueing of ready steps with their attempts, in one statement where a queueing and the attempts it
 * makes took two round trips: marks the steps `picked` (a CTE of their names) queued and makes each one's next attempt
 * as {@link insertAttempt} would, the attempt a row holds moving into `attempts` first (a data-modifying CTE, which
 * reads the rows as they were before the update). Only for a run that is not paused and a pipeline without
 * concurrency keys. $3 the run's priority $4 the run's force $5 available_at $6 queued_at; with `counters`, $7 and $8
 * are added to the run's active and remaining counts, and what it queued to its active count. It returns
 * `returning` of each step queued.
 */
export const queueWithAttemptsSql = (picked: string, returning: string, counters: boolean) =>
  `WITH picked AS (${picked}),
   archived AS (
     INSERT INTO attempts (${ARCHIVED_COLUMNS})
     SELECT run_id, name, attempts, ${ATTEMPT_COLUMNS} FROM steps
     WHERE run_id = $1 AND name IN (SELECT name FROM picked) AND attempt_status IS NOT NULL),
   queued AS (
     UPDATE steps SET status = 'queued', attempts = attempts + 1, attempt_status = 'queued', attempt_priority = $3::integer + priority,
       attempt_force = CASE WHEN force = 1 OR $4::integer = 1 THEN 1 ELSE 0 END, available_at = $5::bigint, queued_at = $6::bigint,
       attempt_feedback = feedback, ${FRESH}, concurrency_key = NULL, concurrency_limit = NULL
     WHERE run_id = $1 AND status = 'pending' AND name IN (SELECT name FROM picked)
     RETURNING ${returning})${
       counters
         ? `,
   counted AS (
     UPDATE runs SET active = active + (SELECT count(*) FROM queued) + $7::integer, remaining = remaining + $8::integer WHERE id = $1)`
         : ''
     }
   SELECT * FROM queued`;

const S = {
  // $1 run id $2 step $3 number of the attempt the row holds: moves it into attempts (nothing when it holds none)
  archive: sql(
    'archiveAttempt',
    `INSERT INTO attempts (${ARCHIVED_COLUMNS})
     SELECT run_id, name, $3, ${ATTEMPT_COLUMNS} FROM steps WHERE run_id = $1 AND name = $2 AND attempt_status IS NOT NULL`,
  ),
  queue: queueStatements('', ''),
  // The same for a step picked ready and not yet marked queued (QueuedStep.unmarked): $9 (queue) or $11 (queueKeyed)
  // or $11 (queueLeased) is its attempt count, which it takes with its status.
  queueMarking: queueStatements(`status = 'queued', attempts = $9, `, `status = 'queued', attempts = $11, `, `status = 'running', started_at = COALESCE(started_at, $9), attempts = $11`),
  // $1 run id $2 step $3 now
  cancelOfStep: sql(
    'cancelStepAttempts',
    `UPDATE steps SET attempt_status = 'cancelled', attempt_finished_at = $3, lease_expires_at = NULL
     WHERE run_id = $1 AND name = $2 AND attempt_status IN ('queued', 'held', 'running')`,
  ),
  // $1 run id
  holdOfRun: sql('holdRunAttempts', `UPDATE steps SET attempt_status = 'held' WHERE run_id = $1 AND attempt_status = 'queued'`),
  // $1 run id
  releaseOfRun: sql('releaseRunAttempts', `UPDATE steps SET attempt_status = 'queued' WHERE run_id = $1 AND attempt_status = 'held'`),
};

/** The next attempt of a step: its number, when it is queued and may start, and what it runs with. */
export interface NextAttempt {
  number: number;
  at: number;
  availableAt: number;
  priority: number;
  force?: boolean;
  feedback?: string | null;
  /** The step was picked ready and is still pending: the attempt's update marks it queued and counts the attempt. */
  marks?: boolean;
}

/**
 * Makes the next attempt of a step that is already marked queued/retrying (its `attempts` counts this one), or that
 * this marks so ({@link NextAttempt.marks}): the attempt its row holds, if any, moves into `attempts` first.
 */
export function* insertAttempt(tx: LedgerTx, run: RunState, step: string, attempt: NextAttempt): Rule<void> {
  // A first attempt has no earlier one to move.
  if (attempt.number > 1) yield* exec(S.archive, [run.id, step, attempt.number - 1]);
  const status = run.status === 'paused' ? 'held' : 'queued';
  const forced = attempt.force || run.force === 1 ? 1 : 0;
  const priority = run.priority + attempt.priority;
  const feedback = tx.jsonText(attempt.feedback ?? null);
  const def = (yield* pipelineOf(tx, run)).byName.get(step);
  const keyed = def !== undefined && def.concurrencyKey !== null;
  const lease = tx.directLease;
  const q = attempt.marks ? S.queueMarking : S.queue;
  if (lease && lease.room > 0 && status === 'queued' && !keyed && attempt.availableAt <= lease.now && (lease.runId === undefined || lease.runId === run.id)) {
    const leased = [run.id, step, priority, forced, attempt.availableAt, attempt.at, feedback, lease.owner, lease.now, lease.until];
    if (attempt.marks) leased.push(attempt.number);
    const row = (yield* get<{ id: number; fence: number }>(q.queueLeased, leased))!;
    lease.room -= 1;
    lease.rows.push({ id: row.id, run_id: run.id, step, number: attempt.number, fence: row.fence, force: forced, feedback: attempt.feedback ?? null, concurrency_key: null, concurrency_limit: null });
    return;
  }
  const values = [run.id, step, status, priority, forced, attempt.availableAt, attempt.at, feedback];
  if (!keyed) yield* exec(q.queue, attempt.marks ? [...values, attempt.number] : values);
  else yield* exec(q.queueKeyed, [...values, def.concurrencyKey, def.concurrencyLimit ?? 1, ...(attempt.marks ? [attempt.number] : [])]);
}

/** Cancels the live attempt of a step (queued, held or running): a running one's result will be rejected. */
export function* cancelStepAttempts(runId: string, step: string, at: number): Rule<number> {
  return yield* exec(S.cancelOfStep, [runId, step, at]);
}

/** Holds the queued attempts of a run (it is paused): no claim takes them until {@link releaseRunAttempts}. */
export function* holdRunAttempts(runId: string): Rule<number> {
  return yield* exec(S.holdOfRun, [runId]);
}

/** Makes the held attempts of a run claimable again (it is resumed). */
export function* releaseRunAttempts(runId: string): Rule<number> {
  return yield* exec(S.releaseOfRun, [runId]);
}
