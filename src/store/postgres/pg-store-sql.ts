import type pg from 'pg';
import { settlesStep, startsStep } from '../ledger/attempt-rows.js';

/** The channel that tells workers in other processes that attempts became available. */
export const WAKEUP_CHANNEL = 'sluice_wakeup';

/** Advisory lock key (pg_advisory_lock) taken while migrating: any 64-bit number unique to Sluice. */
export const MIGRATION_LOCK_KEY = 7_361_020_411_935_117;

/** Advisory lock key held (for a whole session, pg_try_advisory_lock) by the connection of the leading worker process. */
export const LEADER_LOCK_KEY = 7_361_020_411_935_119;

/**
 * Claim condition over the attempt of step row `a`: it has no concurrency key, or fewer than its limit with its key
 * are running (through the partial index steps_running_by_key).
 */
const KEY_HAS_ROOM = `(a.concurrency_key IS NULL OR
  (SELECT count(*) FROM steps k WHERE k.concurrency_key = a.concurrency_key AND k.attempt_status = 'running') < a.concurrency_limit)`;

/**
 * True when claimed attempt `c` is the wake-up of a sleep whose time has come ($2 now): its step is still `waiting`
 * in the statement's snapshot (the claim's own update of the step row is not seen), on a sleep that is not over.
 */
const WOKE_SLEEP = `EXISTS (SELECT 1 FROM steps ws JOIN step_waits w ON w.run_id = ws.run_id AND w.step = ws.name
              WHERE ws.run_id = c.run_id AND ws.name = c.step AND ws.status = 'waiting' AND w.kind = 'sleep' AND w.done = 0 AND w.wake_at <= $2)`;

/** A claimed attempt's `step.started`: its data, and the event as a packed row's later event ([step, type, data, at]). */
const STARTED_DATA = `jsonb_build_object('attempt', number)`;
/** The queue's order (that of steps_queue) over claimed rows `c`. */
const QUEUE_ORDER = `c.attempt_priority DESC, c.available_at, c.id`;

const STARTED_PACKED = `jsonb_build_array(step, 'step.started', ${STARTED_DATA}, $2::bigint)`;

/**
 * Leases the attempts `picked` selects (their step rows, locked; columns id, concurrency_key, concurrency_limit) that
 * have no concurrency key, each with its step's start in the same update of the step row, starts their queued runs,
 * and writes the claim's events (`run.started` for the first attempt of each run it started, `step.woken` for a
 * sleep's wake-up, then `step.started`, one row per attempt packed as migration 19 describes), in one statement. The
 * attempts and their events come best first, in the queue's order (priority, availability, id: `rank`). Returns the
 * claimed rows with their runs; picked attempts with a key, not leased (every other column null), for claimKeyed to
 * admit under the key's lock; and the events' ids, ascending, in one more row (event_ids; every other column null).
 * PostgreSQL runs every data-modifying CTE to completion, whether or not the SELECT reads it. With `relaxed`, for a
 * claim run alone outside a transaction block, its commit does not wait for the WAL flush (synchronous_commit off,
 * set before the first write): a claim lost in a crash leaves its attempts claimable again. A claimed row carries
 * the step row's id (the live attempt's id), its name as `step` and its `attempts` as the attempt's `number`.
 *
 * Every table is reached by key, whatever the planner knows of it: rows are matched with `= ANY (ARRAY(...))`,
 * whose length the planner does not guess (a join with the claimed rows was planned as a hash join over a
 * sequential scan of runs, steps and attempts once the tables had statistics), the runs read per claimed attempt
 * through a LATERAL subquery with LIMIT 1 (one primary key probe each), the runs it started by a hashed `IN` (a
 * join with them was planned as a nested loop that read them all again for each claimed attempt), and
 * `(status = 'queued') IS TRUE` is a filter, not an index condition (without statistics the planner walked every
 * queued run through the status index). test/store-contract/claim-plan.test.ts checks the plan.
 */
const claimLoggedPicked = (picked: string, relaxed: boolean, pending = '') => `WITH picked AS (${picked}),
          claimed AS (
            UPDATE steps s SET attempt_status = 'running', owner = $1, fence = s.fence + 1, attempt_started_at = $2, lease_expires_at = $3,
              ${startsStep('$2', 's')}
            WHERE s.id = ANY (ARRAY(SELECT id FROM picked WHERE concurrency_key IS NULL))
              ${relaxed ? `AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'` : ''}
            RETURNING s.id, s.run_id, s.name AS step, s.attempts AS number, s.fence, s.attempt_force AS force, s.attempt_feedback AS feedback,
              s.attempt_priority, s.available_at),
          started AS (
            UPDATE runs SET status = 'running', started_at = $2
            WHERE id = ANY (ARRAY(SELECT run_id FROM claimed)) AND (status = 'queued') IS TRUE RETURNING id),
          out AS (
            SELECT c.id, c.run_id, c.step, c.number, c.fence, c.force, c.feedback, r.pipeline, r.version, r.input,
              c.run_id IN (SELECT id FROM started) AND row_number() OVER (PARTITION BY c.run_id ORDER BY ${QUEUE_ORDER}) = 1 AS run_started,
              ${WOKE_SLEEP} AS woke, row_number() OVER (ORDER BY ${QUEUE_ORDER}) AS rank
            FROM claimed c CROSS JOIN LATERAL (SELECT pipeline, version, input FROM runs WHERE id = c.run_id LIMIT 1) r),
          logged AS (
            INSERT INTO events (run_id, pipeline, step, type, data, at, more)
            SELECT run_id, pipeline, step, type, data, at, more FROM (${pending}
              SELECT 1 AS g, rank AS k, run_id, pipeline,
                CASE WHEN run_started THEN NULL ELSE step END AS step,
                CASE WHEN run_started THEN 'run.started' WHEN woke THEN 'step.woken' ELSE 'step.started' END AS type,
                CASE WHEN run_started OR woke THEN NULL ELSE ${STARTED_DATA} END AS data, $2::bigint AS at,
                CASE WHEN run_started AND woke THEN jsonb_build_array(jsonb_build_array(step, 'step.woken', NULL::jsonb, $2::bigint), ${STARTED_PACKED})::text
                  WHEN run_started OR woke THEN jsonb_build_array(${STARTED_PACKED})::text END AS more
              FROM out) e
            ORDER BY g, k
            RETURNING id)
          SELECT o.id, o.run_id, o.step, o.number, o.fence, o.force, o.feedback, o.pipeline, o.version, o.input, o.run_started, o.woke,
            NULL::text AS concurrency_key, NULL::integer AS concurrency_limit, NULL::bigint[] AS event_ids, o.rank
          FROM out o
          UNION ALL
          SELECT p.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, false, p.concurrency_key, p.concurrency_limit, NULL, NULL
          FROM picked p WHERE p.concurrency_key IS NOT NULL
          UNION ALL
          SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, false, NULL, NULL, (SELECT array_agg(id ORDER BY id) FROM logged), NULL`;

/**
 * Rows of events from the arrays $n..$n+6 (run_ids, pipelines, steps, types, data as jsonb text, ats, the packed
 * later events as JSON text), numbered `n`: one element per row, see {@link packEvents}.
 */
const eventArrays = (n: number) =>
  `unnest($${n}::text[], $${n + 1}::text[], $${n + 2}::text[], $${n + 3}::text[], $${n + 4}::text[], $${n + 5}::bigint[], $${n + 6}::text[])
     WITH ORDINALITY AS u(r, p, s, t, d, a, m, n)`;

/** Inserts the event rows of {@link eventArrays} in array order (their ids follow it); returns their ids. */
export const insertEventsFrom = (n: number) =>
  `INSERT INTO events (run_id, pipeline, step, type, data, at, more) SELECT r, p, s, t, d::jsonb, a, m FROM ${eventArrays(n)} ORDER BY n RETURNING id`;

/**
 * Event rows emitted earlier in the transaction, written first by claimLoggedPicked: $5 run_ids $6 pipelines
 * $7 steps $8 types $9 data (jsonb text) $10 ats $11 packed later events (rows in array order).
 */
const PENDING_EVENTS = `
              SELECT 0 AS g, n AS k, r AS run_id, p AS pipeline, s AS step, t AS type, d::jsonb AS data, a AS at, m AS more
              FROM ${eventArrays(5)}
              UNION ALL`;

/**
 * The attempts `claimLoggedPicked` picks: the best available (matching `extra` too) in the order of the queue index
 * (steps_queue), skipping step rows another claimer holds.
 */
const available = (extra: string) => `SELECT id, concurrency_key, concurrency_limit FROM steps a
            WHERE attempt_status = 'queued' AND available_at <= $2 ${extra} AND ${KEY_HAS_ROOM}
            ORDER BY attempt_priority DESC, available_at, id LIMIT $4 FOR UPDATE SKIP LOCKED`;


/** The runs of insertRunRows (a CTE: new_runs). */
const NEW_RUNS = `new_runs AS (
                 INSERT INTO runs (id, pipeline, version, status, input, priority, force, max_parallel, selection,
                   idempotency_key, remaining, active, failed, run_at, deadline_at, created_at, parent_run_id, parent_step)
                 SELECT id, p, v, 'queued', i::jsonb, pr, f, mp, sel::jsonb, ik, rem, act, 0, ra, dl, ca, pri, ps
                 FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::smallint[], $7::int[], $8::text[], $9::text[],
                   $10::int[], $11::int[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::text[])
                   AS u(id, p, v, i, pr, f, mp, sel, ik, rem, act, ra, dl, ca, pri, ps))`;

/**
 * The steps of insertRunRows. A ready step is inserted with its first attempt (attempt_status 'queued'; a step that
 * is not ready has none: NULL, and 0 for the priority and force). The steps are inserted in array order, so that
 * their ids, which order the queue among equals, follow it.
 */
const NEW_STEPS = `INSERT INTO steps (run_id, name, seq, status, waiting_on, priority, attempts, attempt_status, attempt_priority, attempt_force,
                   available_at, queued_at)
                 SELECT r, n, sq, st, w, p, at, ast, ap, af, aa, qa
                 FROM unnest($17::text[], $18::text[], $19::int[], $20::text[], $21::int[], $22::int[], $23::int[], $24::text[], $25::int[],
                   $26::smallint[], $27::bigint[], $28::bigint[]) WITH ORDINALITY AS u(r, n, sq, st, w, p, at, ast, ap, af, aa, qa, o)
                 ORDER BY o`;

/** Event rows from arrays $29-$35 (a CTE named logged returning their ids; ids follow array order). */
const NEW_EVENTS = `logged AS (${insertEventsFrom(29)})`;

/**
 * Finishes many results' attempts and steps in one update of their step rows (parameters at finishAttemptsAndSteps);
 * with `outputs`, each row also carries the output its step stored. The step rows are joined to the results by id
 * alone: with `id = ANY` of the ids too, a prepared statement's generic plan (which guesses 10 results) read the
 * results again for every step row (256 x 256 comparisons a batch, 28 ms of the server's CPU). The same statement
 * releases the dependents of the steps it finished (one need of each is settled, as the ledger's releaseDependents
 * does), in a data-modifying CTE over the finished rows: a dependent is pending, never a row this finishes.
 */
const finishMany = (outputs: boolean) => `WITH r AS (
                  SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])
                    AS u(id, fence, owner, status, processing_ms, error, usage, output, cache_key)),
                fin AS (
                  UPDATE steps s SET attempt_status = r.status, attempt_finished_at = $10, processing_ms = r.processing_ms, attempt_error = r.error::jsonb,
                      usage = r.usage::jsonb, lease_expires_at = NULL, ${settlesStep({ status: 'r.status', output: 'r.output::jsonb', cacheKey: 'r.cache_key', now: '$10' }, 's')}
                  FROM r WHERE s.id = r.id AND s.fence = r.fence AND s.owner = r.owner
                    AND s.attempt_status = 'running'
                  RETURNING s.id, s.run_id, s.name AS step, s.attempts AS number${outputs ? ', CASE WHEN s.status = r.status THEN s.output END AS output' : ''}),
                released AS (
                  UPDATE steps SET waiting_on = waiting_on - 1 FROM unnest($11::bigint[], $12::text[]) AS d(id, name), fin
                  WHERE fin.id = d.id AND steps.run_id = fin.run_id AND steps.name = d.name AND steps.status = 'pending')
                SELECT * FROM fin`;

/** SQL of the PostgreSQL backend outside the run transitions; each statement lists its parameters. */
export const SQL = {
  ledger: `CREATE TABLE IF NOT EXISTS sluice_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
  // (none)
  appliedMigrations: `SELECT id FROM sluice_migrations`,
  // $1 id $2 name $3 applied_at
  recordMigration: `INSERT INTO sluice_migrations (id, name, applied_at) VALUES ($1, $2, $3)`,
  // Many runs with their steps (the ready ones with their first attempts) in one statement (arrays, one element per
  // row; steps are inserted in array order). Foreign keys are checked at the end of the statement, when every row is in.
  // runs: $1 ids $2 pipelines $3 versions $4 inputs $5 priorities $6 forces $7 max_parallels $8 selections
  //   $9 idempotency_keys $10 remainings $11 actives $12 run_ats $13 deadline_ats $14 created_ats $15 parent_run_ids $16 parent_steps
  // steps: $17 run_ids $18 names $19 seqs $20 statuses $21 waiting_ons $22 priorities $23 attempts $24 attempt_statuses
  //   $25 attempt_priorities $26 attempt_forces $27 available_ats $28 queued_ats
  insertRunRows: `WITH ${NEW_RUNS} ${NEW_STEPS}`,
  // insertRunRows with the runs' event rows: $29 run_ids $30 pipelines $31 steps $32 types $33 data (jsonb text) $34 ats
  // $35 packed later events (rows in array order); returns the events' ids, and NOTIFY the wake-up channel (one more row, with a null id)
  insertRunRowsNotify: `WITH ${NEW_RUNS}, new_steps AS (${NEW_STEPS}), ${NEW_EVENTS}
                 SELECT id FROM logged UNION ALL SELECT NULL FROM (SELECT pg_notify('${WAKEUP_CHANNEL}', '')) n`,
  // $1 run_id $2 names
  stepOutputs: `SELECT name, output FROM steps WHERE run_id = $1 AND name = ANY($2::text[]) AND output IS NOT NULL`,
  // $1 run_ids $2 steps $3 attempts $4 streams $5 lines $6 ats (arrays, one element per line)
  insertLogs: `INSERT INTO logs (run_id, step, attempt, stream, line, at)
               SELECT r, s, a, st, l, t FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[])
                 WITH ORDINALITY AS u(r, s, a, st, l, t, n) ORDER BY n`,
  // $1 owner $2 now $3 lease_until $4 limit: leases the best available attempts, skipping rows another claimer holds,
  // and in the same statement starts their steps and their queued runs and writes the claim's events (see
  // claimLoggedPicked); one statement outside a transaction block, whose commit does not wait for the WAL flush
  claimLogged: claimLoggedPicked(available(''), true),
  // $1 owner $2 now $3 lease_until $4 limit $5 run_id: the same, for the attempts of one run
  claimLoggedForRun: claimLoggedPicked(available('AND run_id = $5'), true),
  // claimLogged inside a transaction (durable with it), writing the transaction's pending event rows first
  // (PENDING_EVENTS, $5-$11): the first ids returned are theirs
  claimLoggedIn: claimLoggedPicked(available(''), false, PENDING_EVENTS),
  // the same, $12 run_id
  claimLoggedInForRun: claimLoggedPicked(available('AND run_id = $12'), false, PENDING_EVENTS),
  // the same, $12 ids: leases these keyed attempts (admitted under their key's lock)
  claimLoggedInIds: claimLoggedPicked(
    `SELECT id, NULL::text AS concurrency_key, NULL::integer AS concurrency_limit FROM steps
     WHERE id = ANY($12::bigint[]) AND attempt_status = 'queued' ORDER BY id LIMIT $4 FOR UPDATE`,
    false,
    PENDING_EVENTS,
  ),
  // $1 key: true when this transaction holds the lock of a concurrency key (until commit); false when another has it
  tryKeyLock: `SELECT pg_try_advisory_xact_lock(hashtextextended('concurrency:' || $1, 0)) AS locked`,
  // $1 key
  runningWithKey: `SELECT count(*)::integer AS n FROM steps WHERE concurrency_key = $1 AND attempt_status = 'running'`,
  // $1 owner $2 lease_until: extends the owner's leases, skipping step rows a transaction of this worker is finishing
  // (waiting on them could deadlock with it); returns every attempt (step row id) the owner still holds
  heartbeat: `WITH renewed AS (
                UPDATE steps SET lease_expires_at = $2
                WHERE id IN (SELECT id FROM steps WHERE owner = $1 AND attempt_status = 'running' FOR UPDATE SKIP LOCKED))
              SELECT id FROM steps WHERE owner = $1 AND attempt_status = 'running'`,
  // $1 attempt ids (step row ids): locks the runs of these attempts in id order (concurrent transactions never wait
  // in a cycle) and returns their state (RUN_STATE), which the batch settle reads instead of a second counter update;
  // each step row and run is reached by its key (a join was planned over a sequential scan of runs)
  lockAttemptRuns: `WITH a AS (
                      SELECT a.* FROM unnest($1::bigint[]) AS u(id)
                      CROSS JOIN LATERAL (SELECT id, run_id, name, concurrency_key IS NOT NULL AS keyed FROM steps WHERE id = u.id LIMIT 1) a)
                    SELECT a.id AS attempt_id, a.name AS attempt_step, r.id, r.pipeline, r.version, r.status, r.priority, r.force, r.max_parallel, r.remaining,
                      r.active, r.failed, r.run_at, r.parent_run_id, a.keyed
                    FROM runs r JOIN a ON a.run_id = r.id
                    WHERE r.id = ANY (ARRAY(SELECT run_id FROM a)) ORDER BY r.id FOR UPDATE OF r`,
  // $1 id (the step row's) $2 fence $3 owner $4 status $5 now $6 processing_ms $7 error $8 usage: finishes the attempt
  // its step row holds, if the lease still holds
  finishAttempt: `UPDATE steps SET attempt_status = $4, attempt_finished_at = $5, processing_ms = $6, attempt_error = $7, usage = $8, lease_expires_at = NULL
                  WHERE id = $1 AND fence = $2 AND owner = $3 AND attempt_status = 'running'
                  RETURNING run_id, name AS step, attempts AS number`,
  // $1 id $2 fence $3 owner $4 status $5 now $6 processing_ms $7 error $8 usage $9 output $10 cache_key: a result that
  // settles its step (succeeded, cached, skipped) finishes the attempt and the step in one update of the step row;
  // returns the output the step stored (null when it was no longer running and ended otherwise)
  finishAttemptAndStep: `UPDATE steps s SET attempt_status = $4, attempt_finished_at = $5, processing_ms = $6, attempt_error = $7, usage = $8,
                    lease_expires_at = NULL, ${settlesStep({ status: '$4', output: '$9', cacheKey: '$10', now: '$5' }, 's')}
                  WHERE id = $1 AND fence = $2 AND owner = $3 AND attempt_status = 'running'
                  RETURNING run_id, name AS step, attempts AS number, CASE WHEN s.status = $4 THEN s.output END AS output`,
  // $1 ids $2 fences $3 owners $4 statuses $5 processing_ms $6 errors $7 usages $8 outputs $9 cache_keys (arrays, one
  // element per result; each attempt at most once) $10 now $11 $12 the dependents to release (a result's id and the
  // name of a step that needs its step, one element per pair; results of different runs): finishAttemptAndStep for
  // many results in one statement, releasing their dependents
  finishAttemptsAndSteps: finishMany(false),
  // The same, returning the output each step stored (jsonb's text, as the store reads it back; null when the step
  // was not running): for results whose dependents a claim in the same transaction may take
  finishAttemptsAndStepsWithOutputs: finishMany(true),
  // (none): delivered at commit, to every listening worker
  notify: `SELECT pg_notify('${WAKEUP_CHANNEL}', '')`,
} as const;

export type SqlKey = keyof typeof SQL;

/** Runs one statement of {@link SQL} as a named statement (parsed once per connection); returns its rows. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(client: pg.ClientBase, key: SqlKey, values: unknown[] = []): Promise<R[]> {
  return (await client.query<R>({ name: `s_${key}`, text: SQL[key], values })).rows;
}

/**
 * `lockAttemptRuns` with its ids inline, for a query of the simple protocol (sent with BEGIN); undefined when an id
 * is not an integer (the statement is then prepared and bound as usual).
 */
export function lockAttemptRunsText(ids: readonly number[]): string | undefined {
  if (!ids.every(Number.isSafeInteger)) return undefined;
  return SQL.lockAttemptRuns.replace('$1::bigint[]', `'{${ids.join(',')}}'::bigint[]`);
}
