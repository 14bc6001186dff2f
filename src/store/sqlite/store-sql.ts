import { settlesStep, startsStep } from '../ledger/attempt-rows.js';
import { sqliteLimit } from '../ledger/effects.js';

/**
 * In a claim's pick: 1 when the picked attempt is the wake-up of a sleep whose time has come (its step is still
 * `waiting`: the claim starts the step), on a sleep that is not over. Asked only of a waiting step's row.
 */
const WOKE_SLEEP = `CASE WHEN status = 'waiting' THEN EXISTS (SELECT 1 FROM step_waits w WHERE w.run_id = a.run_id AND w.step = a.name
              AND w.kind = 'sleep' AND w.done = 0 AND w.wake_at <= @now) ELSE 0 END`;

/** Claim condition over step `a`: its attempt has no concurrency key, or fewer than its limit with its key are running. */
const KEY_HAS_ROOM = `(a.concurrency_key IS NULL OR
  (SELECT count(*) FROM steps k WHERE k.concurrency_key = a.concurrency_key AND k.attempt_status = 'running') < a.concurrency_limit)`;

/** What a claim picks of a step whose attempt is available. */
const PICKED = `id, concurrency_key, concurrency_limit, ${WOKE_SLEEP} AS woke FROM steps a WHERE attempt_status = 'queued' AND available_at <= @now`;
const BEST_FIRST = `ORDER BY attempt_priority DESC, available_at, id ${sqliteLimit('@limit')}`;

/** A claim's lease of an attempt, which starts its step. */
const LEASE = `UPDATE steps SET attempt_status = 'running', owner = @owner, fence = fence + 1, attempt_started_at = @now,
                 lease_expires_at = @lease_until, ${startsStep('@now')}`;
const LEASED = `RETURNING id, run_id, name AS step, attempts AS number, fence, attempt_force AS force, attempt_feedback AS feedback,
                 concurrency_key, concurrency_limit`;

/** SQL of the SQLite backend; each statement lists its named parameters. */
export const SQL = {
  // @id: the fields of a run that never change (see RunHeader)
  runHeader: `SELECT id, pipeline, version, input, parent_run_id FROM runs WHERE id = @id`,
  // @run_id @name: what a dependent reads of a step (its output only, the row's other text stays on disk)
  stepOutput: `SELECT output FROM steps WHERE run_id = @run_id AND name = @name`,
  // @run_id @step @attempt @stream @line @at
  insertLog: `INSERT INTO logs (run_id, step, attempt, stream, line, at) VALUES (@run_id, @step, @attempt, @stream, @line, @at)`,
  // @now @limit: the attempts a claim takes, best first, picked by a SELECT and then leased one by one
  // (claimAttempt): an UPDATE ... WHERE id IN (this query) cost several times more per execution, most of a claim
  // that takes one attempt (a chain's next step). First asked without the concurrency-key condition, whose
  // correlated count made every execution several times dearer even with no keyed attempt queued; only when a keyed
  // attempt is among those picked is the claim asked again with it (claimableKeyed).
  claimable: `SELECT ${PICKED} ${BEST_FIRST}`,
  // @now @limit @run_id: the same, of one run
  claimableOfRun: `SELECT ${PICKED} AND run_id = @run_id ${BEST_FIRST}`,
  // @now @limit: an attempt with a concurrency key is a candidate only while fewer than its limit with that key run
  // (several of one key in one claim are trimmed by claimInTransaction before they are leased)
  claimableKeyed: `SELECT ${PICKED} AND ${KEY_HAS_ROOM} ${BEST_FIRST}`,
  // @now @limit @run_id
  claimableKeyedOfRun: `SELECT ${PICKED} AND run_id = @run_id AND ${KEY_HAS_ROOM} ${BEST_FIRST}`,
  // @ids (a JSON array) @owner @now @lease_until: claimAttempt for a large batch, in one statement
  claimAttempts: `${LEASE} WHERE id IN (SELECT value FROM json_each(@ids)) AND attempt_status = 'queued' ${LEASED}`,
  // @id @owner @now @lease_until
  claimAttempt: `${LEASE} WHERE id = @id AND attempt_status = 'queued' ${LEASED}`,
  // @id @now
  startRun: `UPDATE runs SET status = 'running', started_at = @now WHERE id = @id AND status = 'queued'`,
  // @key
  runningWithKey: `SELECT count(*) AS n FROM steps WHERE concurrency_key = @key AND attempt_status = 'running'`,
  // @owner @lease_until
  heartbeat: `UPDATE steps SET lease_expires_at = @lease_until WHERE owner = @owner AND attempt_status = 'running' RETURNING id, fence`,
  // @id @fence @owner @status @now @processing_ms @error @usage
  finishAttempt: `UPDATE steps SET attempt_status = @status, attempt_finished_at = @now, processing_ms = @processing_ms, attempt_error = @error,
                    usage = @usage, lease_expires_at = NULL
                  WHERE id = @id AND fence = @fence AND owner = @owner AND attempt_status = 'running'
                  RETURNING run_id, name AS step, attempts AS number`,
  // @id @fence @owner @status @now @processing_ms @usage @output @cache_key: an attempt that succeeded (or was
  // cached or skipped) finishes its step in the same update
  finishAttemptAndStep: `UPDATE steps SET attempt_status = @status, attempt_finished_at = @now, processing_ms = @processing_ms, attempt_error = NULL,
                           usage = @usage, lease_expires_at = NULL, ${settlesStep({ status: '@status', output: '@output', cacheKey: '@cache_key', now: '@now' })}
                         WHERE id = @id AND fence = @fence AND owner = @owner AND attempt_status = 'running'
                         RETURNING run_id, name AS step, attempts AS number, status = @status AS finished`,
} as const;
