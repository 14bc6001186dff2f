import { RUN_STATES } from '../../core/model.js';
import { isTerminalRun } from '../../core/state-machine.js';

/**
 * The statements of the stats rollup, written once for both dialects ($n parameters; the SQLite driver binds them in order).
 * Every read of raw rows selects runs by creation time, on `runs_by_created` / `runs_by_pipeline_created`, and
 * reaches their steps and attempts by key.
 */

/** Run states that may still change; the others change only by going back to one of these (retry, rollback). */
export const OPEN_RUN_STATES = RUN_STATES.filter((s) => !isTerminalRun(s));
const OPEN = OPEN_RUN_STATES.map((s) => `'${s}'`).join(', ');

export type Dialect = 'sqlite' | 'pg';

/** Reads of the rollup and the raw rows. */
export type ReadKey = keyof ReturnType<typeof statsSql>['read'];
/** Writes of the fold. */
export type WriteKey = keyof ReturnType<typeof statsSql>['write'];


/** `$.key` of a JSON column as a number (NULL when absent), summed. */
function total(d: Dialect, col: string, key: string): string {
  return d === 'sqlite' ? `TOTAL(json_extract(${col}, '$.${key}'))` : `COALESCE(sum((${col}->>'${key}')::float8), 0)`;
}

/**
 * The finished attempts of the runs `runs` and `where` choose, as a table `a` of (pipeline, created_at: the run's;
 * step, processing_ms, usage: the attempt's): the earlier attempts of each step (rows of `attempts`) and the attempt
 * its row holds (docs/store.md, "A step row holds its live attempt"), each attempt once. Two joins by key, one per
 * table, rather than the view `all_attempts`, which SQLite would build whole before joining it to a few runs.
 * (No condition on usage: PostgreSQL, taking attempts with a usage for rare, would rather read all of `attempts`
 * than a few runs' rows; an attempt without one adds nothing to the sums.)
 */
function finishedAttempts(runs: string, where: string): string {
  return `(SELECT r.pipeline, r.created_at, e.step, e.processing_ms, e.usage FROM ${runs} CROSS JOIN attempts e
             WHERE e.run_id = r.id AND ${where} AND e.finished_at IS NOT NULL
           UNION ALL
           SELECT r.pipeline, r.created_at, s.name, s.processing_ms, s.usage FROM ${runs} CROSS JOIN steps s
             WHERE s.run_id = r.id AND ${where} AND s.attempt_finished_at IS NOT NULL) a`;
}

/**
 * Raw reads of the fold: runs (with their steps and finished attempts) created in [$2, $3), of pipeline $1
 * (`range`) or of every pipeline (`all`: $1 is NULL), row by row of creation time. `open` counts the runs that
 * may still change as of watermark $4 (not finished, or finished at or after it); `children` counts child runs
 * (a prune of their parent's pipeline removes them).
 */
function rawSql(d: Dialect, scope: 'range' | 'all') {
  const watermark = '$4';
  const where = `${scope === 'range' ? 'r.pipeline = $1' : 'CAST($1 AS TEXT) IS NULL'} AND r.created_at >= $2 AND r.created_at < $3`;
  // Every pipeline: SQLite would rather scan the covering pipeline index whole than read a range of creation times.
  // CROSS JOIN: SQLite reads the runs first (by creation time), then their steps and attempts by key.
  const runs = scope === 'all' && d === 'sqlite' ? 'runs r INDEXED BY runs_by_created' : 'runs r';
  const join = (table: string, alias: string) => `FROM ${runs} CROSS JOIN ${table} ${alias} WHERE ${alias}.run_id = r.id AND ${where}`;
  const ms = `CASE WHEN r.finished_at IS NULL THEN NULL ELSE r.finished_at - COALESCE(r.started_at, r.created_at) END`;
  return {
    runs: `SELECT r.pipeline, r.created_at AS at, r.status, ${ms} AS ms, COUNT(*) AS n, COUNT(r.parent_run_id) AS children,
                  SUM(CASE WHEN r.status IN (${OPEN}) OR r.finished_at >= ${watermark} THEN 1 ELSE 0 END) AS open
           FROM ${runs} WHERE ${where} GROUP BY r.pipeline, r.created_at, r.status, ${ms}`,
    steps: `SELECT r.pipeline, r.created_at AS at, s.name, s.status, MIN(s.seq) AS seq, COUNT(*) AS n
            ${join('steps', 's')} GROUP BY r.pipeline, r.created_at, s.name, s.status`,
    attempts: `SELECT a.pipeline, a.created_at AS at, a.step AS name, a.processing_ms AS ms, COUNT(*) AS n,
                      ${total(d, 'a.usage', 'tokensIn')} AS tokens_in, ${total(d, 'a.usage', 'tokensOut')} AS tokens_out, ${total(d, 'a.usage', 'cost')} AS cost
               FROM ${finishedAttempts(runs, where)}
               GROUP BY a.pipeline, a.created_at, a.step, a.processing_ms`,
  };
}

/**
 * Raw reads for a stats question, aggregated by the database: runs created in [$2, $3) of pipeline $1 (or, with
 * `minutes`, in the whole minutes listed in $2 and before $3). A series bucket is computed as the series computes
 * it ($4 since, $5 until, $6 width, $7 last bucket; -1 outside the series, so since = until = 0 gives totals only):
 * runs by bucket, status and duration, steps by name and status, finished attempts by step and duration, and the
 * usage of attempts by bucket.
 */
function questionSql(d: Dialect, minutes: boolean) {
  const list = d === 'sqlite' ? 'json_each($2) m' : 'unnest($2::bigint[]) AS m(value)';
  const where = minutes
    ? 'r.pipeline = $1 AND r.created_at >= m.value * 60000 AND r.created_at < m.value * 60000 + 60000 AND r.created_at < $3'
    : 'r.pipeline = $1 AND r.created_at >= $2 AND r.created_at < $3';
  const runs = minutes ? `${list} CROSS JOIN runs r` : 'runs r';
  const join = (table: string, alias: string) => `FROM ${runs} CROSS JOIN ${table} ${alias} WHERE ${alias}.run_id = r.id AND ${where}`;
  // The series bucket of the run creation time `at`.
  const bucketOf = (at: string) => {
    const index = d === 'sqlite' ? `MIN($7, MAX(0, CAST((${at} - $4) / $6 AS INTEGER)))` : `LEAST($7::int, GREATEST(0, floor((${at} - $4) / $6::float8)::int))`;
    return `CASE WHEN ${at} >= $4 AND ${at} < $5 THEN ${index} ELSE -1 END`;
  };
  const bucket = bucketOf('r.created_at');
  const ms = `CASE WHEN r.finished_at IS NULL THEN NULL ELSE r.finished_at - COALESCE(r.started_at, r.created_at) END`;
  const usage = `${total(d, 'a.usage', 'tokensIn')} AS tokens_in, ${total(d, 'a.usage', 'tokensOut')} AS tokens_out, ${total(d, 'a.usage', 'cost')} AS cost`;
  return {
    runs: `SELECT ${bucket} AS bucket, r.status, ${ms} AS ms, COUNT(*) AS n FROM ${runs} WHERE ${where} GROUP BY ${bucket}, r.status, ${ms}`,
    steps: `SELECT s.name, s.status, MIN(s.seq) AS seq, COUNT(*) AS n ${join('steps', 's')} GROUP BY s.name, s.status`,
    attempts: `SELECT a.step AS name, a.processing_ms AS ms, COUNT(*) AS n, ${usage} FROM ${finishedAttempts(runs, where)} GROUP BY a.step, a.processing_ms`,
    usage: `SELECT ${bucketOf('a.created_at')} AS bucket, ${usage} FROM ${finishedAttempts(runs, where)} GROUP BY ${bucketOf('a.created_at')}`,
  };
}

/**
 * Minutes (of pipeline $1 when `byPipeline`) among runs created in [$2, $3) that hold a run which may still change
 * as of watermark $4: one in an open state, or one finished at or after $4. Three index reads: open runs by state,
 * finished top-level runs (`runs_prunable`) and finished child runs (`runs_finished_children`) by finish time.
 */
function changingSql(d: Dialect, byPipeline: boolean, only?: 'open' | 'finished'): string {
  // Unary + keeps SQLite off the indexes of these terms, so it reads the index of state or finish time.
  const plus = d === 'sqlite' ? '+' : '';
  const pipeline = byPipeline ? `${plus}r.pipeline = $1` : 'CAST($1 AS TEXT) IS NULL';
  const created = (hint: string) => `${hint}r.created_at >= $2 AND ${hint}r.created_at < $3`;
  const parts = [];
  const select = `SELECT r.pipeline, r.created_at / 60000 AS minute FROM runs r WHERE`;
  if (only !== 'finished') parts.push(`${select} r.status IN (${OPEN}) AND ${pipeline} AND ${created('')}`);
  if (only !== 'open') {
    parts.push(`${select} r.parent_run_id IS NULL AND r.finished_at IS NOT NULL AND r.finished_at >= $4 AND ${pipeline} AND ${created(plus)}`);
    parts.push(`${select} r.parent_run_id IS NOT NULL AND r.finished_at IS NOT NULL AND r.finished_at >= $4 AND ${pipeline} AND ${created(plus)}`);
  }
  return parts.join(' UNION ');
}

export function statsSql(d: Dialect) {
  const n = (text: string) => text;
  const raw = rawSql(d, 'range');
  const rawAll = rawSql(d, 'all');
  const q = questionSql(d, false);
  const qm = questionSql(d, true);
  return {
    read: {
      state: n(`SELECT frontier, watermark FROM stats_fold WHERE id = 1`),
      // $1 pipeline $2 first minute $3 end minute (exclusive)
      rollup: n(`SELECT minute, cells FROM stats_rollup WHERE pipeline = $1 AND minute >= $2 AND minute < $3`),
      rawRuns: n(raw.runs),
      rawSteps: n(raw.steps),
      rawAttempts: n(raw.attempts),
      qRuns: n(q.runs),
      qSteps: n(q.steps),
      qAttempts: n(q.attempts),
      qUsage: n(q.usage),
      qmRuns: n(qm.runs),
      qmSteps: n(qm.steps),
      qmAttempts: n(qm.attempts),
      qmUsage: n(qm.usage),
      // $1 pipeline $2 minutes: the run detail of those folded
      details: d === 'sqlite'
        ? `SELECT minute, runs FROM stats_rollup WHERE pipeline = $1 AND minute IN (SELECT value FROM json_each($2))`
        : `SELECT minute, runs FROM stats_rollup WHERE pipeline = $1 AND minute = ANY($2::bigint[])`,
      allRuns: n(rawAll.runs),
      allSteps: n(rawAll.steps),
      allAttempts: n(rawAll.attempts),
      changing: n(changingSql(d, true)),
      allOpen: n(changingSql(d, false, 'open')),
      allFinished: n(changingSql(d, false, 'finished')),
      // $1 from (ms) $2 how many runs a batch takes: the creation time of the first run past the batch
      batchEnd: n(`SELECT created_at FROM runs WHERE created_at >= $1 ORDER BY created_at LIMIT 1 OFFSET $2`),
      // $1 pipeline: the first minute of its rollup
      firstMinute: n(`SELECT MIN(minute) AS minute FROM stats_rollup WHERE pipeline = $1`),
      // $1 end minute (exclusive): pipelines with child runs folded before it
      childPipelines: n(`SELECT DISTINCT pipeline FROM stats_rollup WHERE children > 0 AND minute < $1`),
    },
    write: {
      // $1 frontier $2 watermark
      saveState: n(
        `INSERT INTO stats_fold (id, frontier, watermark) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET frontier = excluded.frontier, watermark = excluded.watermark`,
      ),
      // $1 pipeline (NULL: every pipeline) minutes [$2, $3)
      deleteRange: n(`DELETE FROM stats_rollup WHERE (CAST($1 AS TEXT) IS NULL OR pipeline = $1) AND minute >= $2 AND minute < $3`),
    },
  };
}
