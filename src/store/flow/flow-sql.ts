// The SQL of flow control, per dialect. Parameters are listed above each statement.

/** Columns of a bucket row. */
export interface BucketRow {
  window_start: number | string;
  count: number | string;
  next_at: number | string;
  first_at: number | string;
  run_id: string | null;
}

const RUN_PENDING = `SELECT 1 FROM runs r WHERE r.id = a.run_id AND r.status = 'queued' AND r.started_at IS NULL`;

/** SQLite: named parameters; the write transaction (BEGIN IMMEDIATE) serialises every start. */
export const SQLITE_FLOW_SQL = {
  // @pipeline @rule @key
  ensureBucket: `INSERT INTO flow_buckets (pipeline, rule, key) VALUES (@pipeline, @rule, @key) ON CONFLICT DO NOTHING`,
  // @pipeline @rule @key
  bucket: `SELECT window_start, count, next_at, first_at, run_id FROM flow_buckets WHERE pipeline = @pipeline AND rule = @rule AND key = @key`,
  // @pipeline @rule @key @window_start @count @next_at @first_at @run_id
  saveBucket: `UPDATE flow_buckets SET window_start = @window_start, count = @count, next_at = @next_at, first_at = @first_at, run_id = @run_id
               WHERE pipeline = @pipeline AND rule = @rule AND key = @key`,
  // @id
  runState: `SELECT status, run_at FROM runs WHERE id = @id`,
  // @id @run_at: delays the queued attempts of a run that has not started
  delayAttempts: `UPDATE attempts AS a SET available_at = @run_at WHERE a.run_id = @id AND a.status = 'queued' AND EXISTS (${RUN_PENDING})`,
  // @id @run_at
  delayRun: `UPDATE runs SET deadline_at = deadline_at - run_at + @run_at, run_at = @run_at WHERE id = @id RETURNING *`,
  // @id @run_at
  delayNewAttempts: `UPDATE attempts SET available_at = @run_at WHERE run_id = @id AND status = 'queued'`,
  // @id @input @run_at
  absorbRun: `UPDATE runs SET input = @input, deadline_at = deadline_at - run_at + @run_at, run_at = @run_at
              WHERE id = @id AND status = 'queued' AND started_at IS NULL RETURNING *`,
  // @id @input @run_at @previous: as absorbRun, only while the input is still @previous (debounce merge)
  absorbRunIf: `UPDATE runs SET input = @input, deadline_at = deadline_at - run_at + @run_at, run_at = @run_at
                WHERE id = @id AND status = 'queued' AND started_at IS NULL AND input = @previous RETURNING *`,
  // @pipeline @key: the pending run of a debounce bucket and its input
  pendingDebounce: `SELECT b.run_id, r.input FROM flow_buckets b JOIN runs r ON r.id = b.run_id
                    WHERE b.pipeline = @pipeline AND b.rule = 'debounce' AND b.key = @key AND r.status = 'queued' AND r.started_at IS NULL`,
  // @run_id @absorbed @after_run_id
  markRun: `INSERT INTO flow_runs (run_id, absorbed, after_run_id) VALUES (@run_id, @absorbed, @after_run_id)
            ON CONFLICT (run_id) DO UPDATE SET absorbed = excluded.absorbed, after_run_id = excluded.after_run_id`,
  // @run_id
  runFlow: `SELECT absorbed, after_run_id FROM flow_runs WHERE run_id = @run_id`,
  // whether any run is held at all: a cheap read before taking the write lock
  anyHeld: `SELECT 1 AS held FROM flow_runs WHERE after_run_id IS NOT NULL LIMIT 1`,
  // held runs whose predecessor ended or is gone
  releasable: `SELECT f.run_id FROM flow_runs f LEFT JOIN runs p ON p.id = f.after_run_id
               WHERE f.after_run_id IS NOT NULL AND (p.id IS NULL OR p.status IN ('succeeded', 'failed', 'cancelled'))`,
  // @id @now
  releaseAttempts: `UPDATE attempts SET available_at = @now WHERE run_id = @id AND status = 'queued'`,
  // @id @now
  releaseRun: `UPDATE runs SET deadline_at = deadline_at - run_at + @now, run_at = @now WHERE id = @id AND status = 'queued'`,
  // @id
  clearAfter: `UPDATE flow_runs SET after_run_id = NULL WHERE run_id = @id`,
} as const;

/** PostgreSQL: positional parameters; the bucket row is locked (FOR UPDATE) until the run's transaction ends. */
export const PG_FLOW_SQL = {
  // $1 pipeline, $2 rule, $3 key
  ensureBucket: `INSERT INTO flow_buckets (pipeline, rule, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
  // $1 pipeline, $2 rule, $3 key
  bucket: `SELECT window_start, count, next_at, first_at, run_id FROM flow_buckets WHERE pipeline = $1 AND rule = $2 AND key = $3 FOR UPDATE`,
  // $1 pipeline, $2 rule, $3 key, $4 window_start, $5 count, $6 next_at, $7 first_at, $8 run_id
  saveBucket: `UPDATE flow_buckets SET window_start = $4, count = $5, next_at = $6, first_at = $7, run_id = $8
               WHERE pipeline = $1 AND rule = $2 AND key = $3`,
  // $1 id
  runState: `SELECT status, run_at FROM runs WHERE id = $1`,
  // $1 id, $2 run_at: locks the queued attempts first (as a claim does), so no claim takes them meanwhile
  delayAttempts: `UPDATE attempts a SET available_at = $2 WHERE a.run_id = $1 AND a.status = 'queued' AND EXISTS (${RUN_PENDING})`,
  // $1 id, $2 run_at
  delayRun: `UPDATE runs SET deadline_at = deadline_at - run_at + $2, run_at = $2 WHERE id = $1 RETURNING *`,
  // $1 id, $2 run_at
  delayNewAttempts: `UPDATE attempts SET available_at = $2 WHERE run_id = $1 AND status = 'queued'`,
  // $1 id, $2 input (jsonb), $3 run_at
  absorbRun: `UPDATE runs SET input = $2, deadline_at = deadline_at - run_at + $3, run_at = $3
              WHERE id = $1 AND status = 'queued' AND started_at IS NULL RETURNING *`,
  // $1 id, $2 input (jsonb), $3 run_at, $4 previous (jsonb)
  absorbRunIf: `UPDATE runs SET input = $2, deadline_at = deadline_at - run_at + $3, run_at = $3
                WHERE id = $1 AND status = 'queued' AND started_at IS NULL AND input = $4::jsonb RETURNING *`,
  // $1 pipeline, $2 key
  pendingDebounce: `SELECT b.run_id, r.input FROM flow_buckets b JOIN runs r ON r.id = b.run_id
                    WHERE b.pipeline = $1 AND b.rule = 'debounce' AND b.key = $2 AND r.status = 'queued' AND r.started_at IS NULL`,
  // $1 run_id, $2 absorbed, $3 after_run_id
  markRun: `INSERT INTO flow_runs (run_id, absorbed, after_run_id) VALUES ($1, $2, $3)
            ON CONFLICT (run_id) DO UPDATE SET absorbed = excluded.absorbed, after_run_id = excluded.after_run_id`,
  // $1 run_id
  runFlow: `SELECT absorbed, after_run_id FROM flow_runs WHERE run_id = $1`,
  anyHeld: `SELECT 1 AS held FROM flow_runs WHERE after_run_id IS NOT NULL LIMIT 1`,
  releasable: `SELECT f.run_id FROM flow_runs f LEFT JOIN runs p ON p.id = f.after_run_id
               WHERE f.after_run_id IS NOT NULL AND (p.id IS NULL OR p.status IN ('succeeded', 'failed', 'cancelled'))
               FOR UPDATE OF f SKIP LOCKED`,
  // $1 id, $2 now
  releaseAttempts: `UPDATE attempts SET available_at = $2 WHERE run_id = $1 AND status = 'queued'`,
  // $1 id, $2 now
  releaseRun: `UPDATE runs SET deadline_at = deadline_at - run_at + $2, run_at = $2 WHERE id = $1 AND status = 'queued'`,
  // $1 id
  clearAfter: `UPDATE flow_runs SET after_run_id = NULL WHERE run_id = $1`,
} as const;
