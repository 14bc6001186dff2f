import { stepStatesInto } from '../../core/state-machine.js';

/** Claim condition over attempt `a`: it has no concurrency key, or fewer than its limit with its key are running. */
/**
 * In a claim's RETURNING: 1 when the claimed attempt is the wake-up of a sleep whose time has come (its step is still
 * `waiting`: the claim starts the step after), on a sleep that is not over.
 */
const WOKE_SLEEP = `EXISTS (SELECT 1 FROM steps ws JOIN step_waits w ON w.run_id = ws.run_id AND w.step = ws.name
              WHERE ws.run_id = attempts.run_id AND ws.name = attempts.step AND ws.status = 'waiting' AND w.kind = 'sleep' AND w.done = 0
                AND w.wake_at <= @now)`;

const KEY_HAS_ROOM = `(a.concurrency_key IS NULL OR
  (SELECT count(*) FROM attempts k WHERE k.concurrency_key = a.concurrency_key AND k.status = 'running') < a.concurrency_limit)`;

/** SQL of the SQLite backend; each statement lists its named parameters. */
export const SQL = {
  // @name @version
  pipeline: `SELECT * FROM pipelines WHERE name = @name AND version = @version`,
  // @name
  latestPipeline: `SELECT * FROM pipelines WHERE name = @name ORDER BY version DESC LIMIT 1`,
  latestPipelines: `SELECT p.* FROM pipelines p
                    JOIN (SELECT name, MAX(version) AS version FROM pipelines GROUP BY name) l
                      ON l.name = p.name AND l.version = p.version ORDER BY p.name`,
  // @name
  pipelineVersions: `SELECT * FROM pipelines WHERE name = @name ORDER BY version DESC`,
  // @name @version @hash @definition @source @source_file @created_at
  insertPipeline: `INSERT INTO pipelines (name, version, hash, definition, source, source_file, created_at)
                   VALUES (@name, @version, @hash, @definition, @source, @source_file, @created_at)`,
  // @pipeline
  resetCache: `DELETE FROM step_cache WHERE pipeline = @pipeline`,
  // @id
  run: `SELECT * FROM runs WHERE id = @id`,
  // @id: the fields of a run that never change (see RunHeader)
  runHeader: `SELECT id, pipeline, version, input, parent_run_id FROM runs WHERE id = @id`,
  // @run_id
  steps: `SELECT * FROM steps WHERE run_id = @run_id ORDER BY seq`,
  // @run_id @name
  step: `SELECT * FROM steps WHERE run_id = @run_id AND name = @name`,
  // @run_id @name: what a dependent reads of a step (its output only, the row's other text stays on disk)
  stepOutput: `SELECT output FROM steps WHERE run_id = @run_id AND name = @name`,
  // @run_id
  attempts: `SELECT * FROM attempts WHERE run_id = @run_id ORDER BY id`,
  // @run_id @step
  stepAttempts: `SELECT * FROM attempts WHERE run_id = @run_id AND step = @step ORDER BY id`,
  // @run_id @step @attempt @stream @line @at
  insertLog: `INSERT INTO logs (run_id, step, attempt, stream, line, at) VALUES (@run_id, @step, @attempt, @stream, @line, @at)`,
  // @run_id
  logs: `SELECT * FROM logs WHERE run_id = @run_id ORDER BY id`,
  // @run_id @step
  stepLogs: `SELECT * FROM logs WHERE run_id = @run_id AND step = @step ORDER BY id`,
  // @pipeline @key
  cache: `SELECT output, run_id, outputs FROM step_cache WHERE pipeline = @pipeline AND cache_key = @key`,
  // @pipeline @step: the latest cached result of a step, what a miss is explained against
  latestCache: `SELECT run_id, parts FROM step_cache WHERE pipeline = @pipeline AND step = @step ORDER BY created_at DESC LIMIT 1`,
  // @now @limit: the attempts a claim takes, best first, picked by a SELECT and then leased one by one
  // (claimAttempt): an UPDATE ... WHERE id IN (this query) cost several times more per execution, most of a claim
  // that takes one attempt (a chain's next step). First asked without the concurrency-key condition, whose
  // correlated count made every execution several times dearer even with no keyed attempt queued; only when a keyed
  // attempt is among those picked is the claim asked again with it (claimableKeyed).
  claimable: `SELECT id, concurrency_key FROM attempts WHERE status = 'queued' AND available_at <= @now
              ORDER BY priority DESC, available_at, id LIMIT @limit`,
  // @now @limit @run_id: the same, of one run
  claimableOfRun: `SELECT id, concurrency_key FROM attempts WHERE status = 'queued' AND available_at <= @now AND run_id = @run_id
                   ORDER BY priority DESC, available_at, id LIMIT @limit`,
  // @now @limit: an attempt with a concurrency key is a candidate only while fewer than its limit with that key run
  // (several of one key in one claim are trimmed by claimInTransaction)
  claimableKeyed: `SELECT id, concurrency_key FROM attempts a WHERE status = 'queued' AND available_at <= @now AND ${KEY_HAS_ROOM}
                   ORDER BY priority DESC, available_at, id LIMIT @limit`,
  // @now @limit @run_id
  claimableKeyedOfRun: `SELECT id, concurrency_key FROM attempts a WHERE status = 'queued' AND available_at <= @now AND run_id = @run_id AND ${KEY_HAS_ROOM}
                        ORDER BY priority DESC, available_at, id LIMIT @limit`,
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
  // @owner @now @lease_until @limit @run_id
  claimForRun: `UPDATE attempts SET status = 'running', owner = @owner, fence = fence + 1, started_at = @now,
            lease_expires_at = @lease_until
          WHERE id IN (SELECT id FROM attempts a WHERE status = 'queued' AND available_at <= @now AND run_id = @run_id AND ${KEY_HAS_ROOM}
                       ORDER BY priority DESC, available_at, id LIMIT @limit)
          RETURNING id, run_id, step, number, fence, force, feedback, concurrency_key, concurrency_limit, ${WOKE_SLEEP} AS woke`,
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
  // @key @window
  rateWindow: `SELECT requests, tokens FROM rate_windows WHERE key = @key AND window = @window`,
  // @key @window @tokens
  takeRate: `INSERT INTO rate_windows (key, window, requests, tokens) VALUES (@key, @window, 1, @tokens)
             ON CONFLICT (key, window) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens`,
  // @key @window @delta
  settleRate: `UPDATE rate_windows SET tokens = MAX(0, tokens + @delta) WHERE key = @key AND window = @window`,
  // @before
  pruneRates: `DELETE FROM rate_windows WHERE window < @before`,
  // @run_id @step
  stepItems: `SELECT idx, status, output, error FROM step_items WHERE run_id = @run_id AND step = @step ORDER BY idx`,
  // @run_id @step @idx @status @output @error @now
  putStepItem: `INSERT INTO step_items (run_id, step, idx, status, output, error, updated_at)
                VALUES (@run_id, @step, @idx, @status, @output, @error, @now)
                ON CONFLICT (run_id, step, idx) DO UPDATE SET status = excluded.status, output = excluded.output,
                  error = excluded.error, updated_at = excluded.updated_at`,
  // @id @fence @owner
  holdsLease: `SELECT 1 AS held FROM attempts WHERE id = @id AND fence = @fence AND owner = @owner AND status = 'running'`,
  // @run_id @name @status @output @cache_key @now
  finishStep: `UPDATE steps SET status = @status, output = @output, cache_key = @cache_key, error = NULL, finished_at = @now
               WHERE run_id = @run_id AND name = @name AND status = 'running'`,
  // @limit
  deadLetters: `SELECT * FROM runs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT @limit`,
} as const;
