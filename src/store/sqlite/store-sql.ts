import { stepStatesInto } from '../../core/state-machine.js';
import { sqliteLimit } from '../ledger/effects.js';

/**
 * In a claim's RETURNING: 1 when the claimed attempt is the wake-up of a sleep whose time has come (its step is still
 * `waiting`: the claim starts the step after), on a sleep that is not over.
 */
const WOKE_SLEEP = `EXISTS (SELECT 1 FROM steps ws JOIN step_waits w ON w.run_id = ws.run_id AND w.step = ws.name
              WHERE ws.run_id = attempts.run_id AND ws.name = attempts.step AND ws.status = 'waiting' AND w.kind = 'sleep' AND w.done = 0
                AND w.wake_at <= @now)`;

/** Claim condition over attempt `a`: it has no concurrency key, or fewer than its limit with its key are running. */
const KEY_HAS_ROOM = `(a.concurrency_key IS NULL OR
  (SELECT count(*) FROM attempts k WHERE k.concurrency_key = a.concurrency_key AND k.status = 'running') < a.concurrency_limit)`;

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
  claimable: `SELECT id, concurrency_key FROM attempts WHERE status = 'queued' AND available_at <= @now
              ORDER BY priority DESC, available_at, id ${sqliteLimit('@limit')}`,
  // @now @limit @run_id: the same, of one run
  claimableOfRun: `SELECT id, concurrency_key FROM attempts WHERE status = 'queued' AND available_at <= @now AND run_id = @run_id
                   ORDER BY priority DESC, available_at, id ${sqliteLimit('@limit')}`,
  // @now @limit: an attempt with a concurrency key is a candidate only while fewer than its limit with that key run
  // (several of one key in one claim are trimmed by claimInTransaction)
  claimableKeyed: `SELECT id, concurrency_key FROM attempts a WHERE status = 'queued' AND available_at <= @now AND ${KEY_HAS_ROOM}
                   ORDER BY priority DESC, available_at, id ${sqliteLimit('@limit')}`,
  // @now @limit @run_id
  claimableKeyedOfRun: `SELECT id, concurrency_key FROM attempts a WHERE status = 'queued' AND available_at <= @now AND run_id = @run_id AND ${KEY_HAS_ROOM}
                        ORDER BY priority DESC, available_at, id ${sqliteLimit('@limit')}`,
  // @ids (a JSON array) @owner @now @lease_until: claimAttempt for a large batch, in one statement
  claimAttempts: `UPDATE attempts SET status = 'running', owner = @owner, fence = fence + 1, started_at = @now,
                    lease_expires_at = @lease_until
                  WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'queued'
                  RETURNING id, run_id, step, number, fence, force, feedback, concurrency_key, concurrency_limit, ${WOKE_SLEEP} AS woke`,
  // @id @owner @now @lease_until
  claimAttempt: `UPDATE attempts SET status = 'running', owner = @owner, fence = fence + 1, started_at = @now,
                   lease_expires_at = @lease_until
                 WHERE id = @id AND status = 'queued'
                 RETURNING id, run_id, step, number, fence, force, feedback, concurrency_key, concurrency_limit, ${WOKE_SLEEP} AS woke`,
  // @id @now
  startRun: `UPDATE runs SET status = 'running', started_at = @now WHERE id = @id AND status = 'queued'`,
  // @run_id @name @now
  startStep: `UPDATE steps SET status = 'running', started_at = COALESCE(started_at, @now)
              WHERE run_id = @run_id AND name = @name AND status IN (${stepStatesInto('running').map((s) => `'${s}'`).join(', ')})`,
  // @key
  runningWithKey: `SELECT count(*) AS n FROM attempts WHERE concurrency_key = @key AND status = 'running'`,
  // @id: gives back a keyed attempt this claim took beyond its key's limit
  unclaim: `UPDATE attempts SET status = 'queued', owner = NULL, started_at = NULL, lease_expires_at = NULL WHERE id = @id`,
  // @owner @lease_until
  heartbeat: `UPDATE attempts SET lease_expires_at = @lease_until WHERE owner = @owner AND status = 'running' RETURNING id`,
  // @id @fence @owner @status @now @processing_ms @error @usage
  finishAttempt: `UPDATE attempts SET status = @status, finished_at = @now, processing_ms = @processing_ms, error = @error,
                    usage = @usage, lease_expires_at = NULL
                  WHERE id = @id AND fence = @fence AND owner = @owner AND status = 'running'
                  RETURNING run_id, step, number`,
  // @run_id @name @status @output @cache_key @now
  finishStep: `UPDATE steps SET status = @status, output = @output, cache_key = @cache_key, error = NULL, finished_at = @now
               WHERE run_id = @run_id AND name = @name AND status = 'running'`,
} as const;
