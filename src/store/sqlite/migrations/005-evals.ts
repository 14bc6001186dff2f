/** Migration 5: eval cases of pipelines and the result of their last eval run. */
export const sql = `
-- One row per case. JSON columns hold JSON text; actual_output is NULL until the case ran (or when the pipeline
-- failed on it, then error is set). passed: 1, 0, or NULL = not run. position keeps the written order of a set.
CREATE TABLE pipeline_evals (
  id             INTEGER PRIMARY KEY,
  pipeline       TEXT    NOT NULL,
  position       INTEGER NOT NULL,
  record_id      TEXT,
  input          TEXT,
  desired_output TEXT    NOT NULL,
  comparator     TEXT    NOT NULL DEFAULT 'exact',
  notes          TEXT,
  actual_output  TEXT,
  justification  TEXT,
  confidence     REAL,
  passed         INTEGER,
  error          TEXT,
  last_ran_at    INTEGER,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  CHECK ((record_id IS NULL) <> (input IS NULL))
);

CREATE INDEX pipeline_evals_by_pipeline ON pipeline_evals (pipeline, position);
CREATE UNIQUE INDEX pipeline_evals_by_record ON pipeline_evals (pipeline, record_id) WHERE record_id IS NOT NULL;
`;
