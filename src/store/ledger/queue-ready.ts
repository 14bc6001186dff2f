/**
 * Queueing the ready steps of a run (waiting on nothing; the first by priority, then step order), written once as
 * two rules. A driver's {@link LedgerTx.queueReady} runs the one that is cheaper on it:
 *
 * - {@link queueReadyInOne}: one UPDATE over a SELECT of the ready steps. One round trip, which is what counts on
 *   PostgreSQL.
 * - {@link pickThenQueue}: a SELECT of the ready steps; the update that makes each one's attempt marks it queued
 *   too (one UPDATE over their names when there are many). On SQLite the UPDATE over a subquery cost about 50-75 µs
 *   per execution in a chain (`bench/statements.ts`), the SELECT and an UPDATE by key about a fifth of that together.
 */
import { stepStatesInto } from '../../core/state-machine.js';
import { inList } from './transitions.js';
import { queueWithAttemptsSql } from './attempt-rows.js';
import { all, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';

/** A step just queued: `attempts` numbers the attempt about to be made. */
export interface QueuedStep {
  name: string;
  attempts: number;
  force: number;
  feedback: string | null;
  priority: number;
  seq: number;
  /** Picked and still pending: its attempt's update marks it queued (NextAttempt.marks). */
  unmarked?: boolean;
  /** Its attempt was made with it, as the queueing was asked to ({@link AttemptsOfRun}). */
  attempted?: boolean;
}

/**
 * What the attempts of a queueing are made with when the queueing may make them itself (a run that is not paused, of
 * a pipeline without concurrency keys): the run's priority and force (0/1), and the attempts' times.
 */
export interface AttemptsOfRun {
  priority: number;
  force: number;
  availableAt: number;
  at: number;
  /** A settle's changes to the run's active and remaining counts, added with what is queued, in the same statement. */
  counters?: { active: number; remaining: number };
}

/**
 * How many ready steps a queueing takes: `slots`, counted by the caller from the run state it holds; or, when a
 * step settles, as many as the run's row has free slots plus the one the settling step frees (`freed`, 0 or 1),
 * none when the run may not queue now (it is not queued, running or waiting, or a step failed it and it fails fast).
 */
export type QueueLimit = { slots: number; attempts?: AttemptsOfRun } | { freed: number; failFast: boolean };

const READY = `run_id = $1 AND status = 'pending' AND waiting_on = 0`;
const ORDER = `ORDER BY priority DESC, seq`;
const QUEUEING_RUN = `status IN ('queued', 'running', 'waiting') AND NOT (failed > 0 AND $3 = 1)`;
/** The LIMIT of a queueing counted from the run's row: $1 run id, $2 the slot the settling step frees, $3 1 when the run fails fast. */
const RUN_SLOTS = {
  sqlite: `(SELECT CASE WHEN ${QUEUEING_RUN} THEN max(0, max_parallel - active + $2) ELSE 0 END FROM runs WHERE id = $1)`,
  pg: `(SELECT CASE WHEN ${QUEUEING_RUN} THEN GREATEST(0, max_parallel - active + $2::integer) ELSE 0 END FROM runs WHERE id = $1)`,
};
const QUEUED_COLUMNS = 'name, attempts, force, feedback, priority, seq';
const MARK_QUEUED = `UPDATE steps SET status = 'queued', attempts = attempts + 1`;

/** The one-statement queueing: RETURNING gives no order, so the rule sorts the rows. */
const inOne = (limit: string) =>
  `${MARK_QUEUED} WHERE run_id = $1 AND status IN (${inList(stepStatesInto('queued'))}) AND name IN (
     SELECT name FROM steps WHERE ${READY} ${ORDER} LIMIT ${limit})
   RETURNING ${QUEUED_COLUMNS}`;

/** The pick: the attempt numbers it returns are those the update by key then stores. */
const pick = (limit: string) => `SELECT name, attempts + 1 AS attempts, force, feedback, priority, seq FROM steps WHERE ${READY} ${ORDER} LIMIT ${limit}`;

const S = {
  // $1 run id, $2 slots
  queueInOne: sql('queueReadyInOne', inOne('$2')),
  // $1 run id, $2 freed, $3 fails fast (1/0)
  queueInOneOfRun: sql('queueReadyInOneOfRun', { sqlite: inOne(RUN_SLOTS.sqlite), pg: inOne(RUN_SLOTS.pg) }),
  // $1 run id, $2 slots, then AttemptsOfRun: $3 priority $4 force $5 available_at $6 queued_at (PostgreSQL only)
  queueWithAttempts: sql('queueReadyWithAttempts', queueWithAttemptsSql(`SELECT name FROM steps WHERE ${READY} ${ORDER} LIMIT $2`, QUEUED_COLUMNS, false)),
  // the same, then $7 $8 added to the run's active and remaining counts
  queueWithAttemptsCounting: sql('queueReadyWithAttemptsCounting', queueWithAttemptsSql(`SELECT name FROM steps WHERE ${READY} ${ORDER} LIMIT $2`, QUEUED_COLUMNS, true)),
  // $1 run id, $2 slots
  pick: sql('pickReady', pick('$2')),
  // $1 run id, $2 freed, $3 fails fast (1/0)
  pickOfRun: sql('pickReadyOfRun', { sqlite: pick(RUN_SLOTS.sqlite), pg: pick(RUN_SLOTS.pg) }),
  // $1 run id, $2 names (a JSON array)
  queueMany: sql('queueReadySteps', {
    sqlite: `${MARK_QUEUED} WHERE run_id = $1 AND name IN (SELECT value FROM json_each($2)) AND status = 'pending'`,
    pg: `${MARK_QUEUED} WHERE run_id = $1 AND name IN (SELECT jsonb_array_elements_text($2::jsonb)) AND status = 'pending'`,
  }),
};

/** The statements that find a run's ready steps (the one-statement queueing and the pick), for the plan tests. */
export const READY_STEP_STATEMENTS = { queueInOne: S.queueInOne, pick: S.pick };

/** Steps picked at most to be marked queued each by its attempt's update; more are marked by one UPDATE over their names. */
const QUEUE_ONE_BY_ONE = 8;

const byPriorityThenSeq = (a: QueuedStep, b: QueuedStep) => b.priority - a.priority || a.seq - b.seq;

function limitArgs(runId: string, limit: QueueLimit): unknown[] {
  return 'slots' in limit ? [runId, limit.slots] : [runId, limit.freed, limit.failFast ? 1 : 0];
}

/**
 * Queues the ready steps of a run in one statement; returns them by priority, then step order. Given
 * {@link AttemptsOfRun}, the statement makes their attempts too.
 */
export function* queueReadyInOne(runId: string, limit: QueueLimit): Rule<QueuedStep[]> {
  if ('slots' in limit && limit.attempts) {
    const a = limit.attempts;
    const args = [runId, limit.slots, a.priority, a.force, a.availableAt, a.at];
    const rows = a.counters
      ? yield* all<QueuedStep>(S.queueWithAttemptsCounting, [...args, a.counters.active, a.counters.remaining])
      : yield* all<QueuedStep>(S.queueWithAttempts, args);
    for (const row of rows) row.attempted = true;
    return rows.sort(byPriorityThenSeq);
  }
  const rows = yield* all<QueuedStep>('slots' in limit ? S.queueInOne : S.queueInOneOfRun, limitArgs(runId, limit));
  return rows.sort(byPriorityThenSeq);
}

/**
 * Picks the ready steps of a run; returns them by priority, then step order. Many are marked queued here by one
 * UPDATE; a few are left to the update that makes each one's attempt (one UPDATE of the row where there were two).
 */
export function* pickThenQueue(tx: LedgerTx, runId: string, limit: QueueLimit): Rule<QueuedStep[]> {
  const rows = yield* all<QueuedStep>('slots' in limit ? S.pick : S.pickOfRun, limitArgs(runId, limit));
  if (rows.length > QUEUE_ONE_BY_ONE) yield* exec(S.queueMany, [runId, tx.json(rows.map((r) => r.name))]);
  else for (const row of rows) row.unmarked = true;
  return rows;
}
