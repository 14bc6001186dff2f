/**
 * The attempt rows the run-state rules write, written once for both backends: the next attempt of a step (queued,
 * held while its run is paused, or leased at once to the worker whose completion queued it), the attempts of a step
 * that is cancelled or reset, and the queued attempts of a run held while it is paused. The drivers' claims,
 * heartbeats and results change attempt rows too, on their own hot paths.
 */
import { get, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';
import { pipelineOf, type RunState } from './transitions.js';

const S = {
  insert: sql(
    'insertAttempt',
    `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
  ),
  // $1 run id $2 step $3 number $4 priority $5 force $6 available_at $7 queued_at $8 feedback $9 owner $10 now $11 lease
  // until: an attempt inserted leased (see DirectLease), as a claim would lease it
  insertLeased: sql(
    'insertLeasedAttempt',
    `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback, owner, fence, started_at, lease_expires_at)
     VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, 1, $10, $11) RETURNING id`,
  ),
  // An attempt of a step with a concurrency_key takes the key its run rendered (the key's text when it has none).
  insertKeyed: sql('insertKeyedAttempt', {
    sqlite: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback, concurrency_key, concurrency_limit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE((SELECT json_extract(concurrency_keys, '$.' || json_quote($2)) FROM runs WHERE id = $1), $10), $11)`,
    pg: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback, concurrency_key, concurrency_limit)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE((SELECT concurrency_keys ->> $2 FROM runs WHERE id = $1), $10), $11)`,
  }),
  // $1 run id $2 step $3 now
  cancelOfStep: sql(
    'cancelStepAttempts',
    `UPDATE attempts SET status = 'cancelled', finished_at = $3, lease_expires_at = NULL WHERE run_id = $1 AND step = $2 AND status IN ('queued', 'held', 'running')`,
  ),
  // $1 run id
  holdOfRun: sql('holdRunAttempts', `UPDATE attempts SET status = 'held' WHERE run_id = $1 AND status = 'queued'`),
  // $1 run id
  releaseOfRun: sql('releaseRunAttempts', `UPDATE attempts SET status = 'queued' WHERE run_id = $1 AND status = 'held'`),
};

/** The next attempt of a step: its number, when it is queued and may start, and what it runs with. */
export interface NextAttempt {
  number: number;
  at: number;
  availableAt: number;
  priority: number;
  force?: boolean;
  feedback?: string | null;
}

/** Inserts the next attempt of a step that is already marked queued/retrying. */
export function* insertAttempt(tx: LedgerTx, run: RunState, step: string, attempt: NextAttempt): Rule<void> {
  const status = run.status === 'paused' ? 'held' : 'queued';
  const forced = attempt.force || run.force === 1 ? 1 : 0;
  const priority = run.priority + attempt.priority;
  const feedback = tx.jsonText(attempt.feedback ?? null);
  const values = [run.id, step, attempt.number, status, priority, forced, attempt.availableAt, attempt.at, feedback];
  const def = (yield* pipelineOf(tx, run)).byName.get(step);
  const keyed = def !== undefined && def.concurrencyKey !== null;
  const lease = tx.directLease;
  if (lease && lease.room > 0 && status === 'queued' && !keyed && attempt.availableAt <= lease.now && (lease.runId === undefined || lease.runId === run.id)) {
    const leased = [run.id, step, attempt.number, priority, forced, attempt.availableAt, attempt.at, feedback, lease.owner, lease.now, lease.until];
    const row = (yield* get<{ id: number }>(S.insertLeased, leased))!;
    lease.room -= 1;
    lease.rows.push({ id: row.id, run_id: run.id, step, number: attempt.number, fence: 1, force: forced, feedback: attempt.feedback ?? null, concurrency_key: null, concurrency_limit: null });
  } else if (!keyed) yield* exec(S.insert, values);
  else yield* exec(S.insertKeyed, [...values, def.concurrencyKey, def.concurrencyLimit ?? 1]);
}

/** Cancels the live attempts of a step (queued, held or running): a running one's result will be rejected. */
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
