/**
 * Migration 14: flow control of runs.
 * - `flow_buckets` holds the state of each (pipeline, rule, rendered key) of the rate_limit, throttle, debounce
 *   and singleton rules; run creation reads and writes it in its own transaction, so every process sharing the
 *   store takes the same decisions.
 * - `flow_runs` says what a rule did to a run: how many start requests a debounced run absorbed, and which run a
 *   queued singleton waits for (`after_run_id`, cleared when it is released).
 */
export const sql = `
CREATE TABLE flow_buckets (
  pipeline     TEXT    NOT NULL,
  rule         TEXT    NOT NULL,            -- rate_limit, throttle, debounce, singleton
  key          TEXT    NOT NULL,            -- the rendered key, '' without one
  window_start INTEGER NOT NULL DEFAULT 0,  -- epoch ms
  count        INTEGER NOT NULL DEFAULT 0,
  next_at      INTEGER NOT NULL DEFAULT 0,  -- epoch ms
  first_at     INTEGER NOT NULL DEFAULT 0,  -- epoch ms
  run_id       TEXT,
  PRIMARY KEY (pipeline, rule, key)
);

CREATE TABLE flow_runs (
  run_id       TEXT    PRIMARY KEY,
  absorbed     INTEGER,
  after_run_id TEXT
);
CREATE INDEX flow_runs_after ON flow_runs (after_run_id) WHERE after_run_id IS NOT NULL;
`;
