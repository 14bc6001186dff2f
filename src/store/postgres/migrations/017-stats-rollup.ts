/**
 * Migration 17: the pipeline stats rollup (src/store/stats/rollup.ts).
 * - `stats_rollup`: per pipeline and minute of run creation, counts, sums and a duration histogram of the runs
 *   (kind 'r', by status), their steps ('s', by name and status) and their finished attempts ('a', by step).
 *   The leader's fold writes it; nothing on the run path does.
 * - `stats_fold`: how far the fold has come (minutes before `frontier` are folded, as of `watermark`, epoch ms).
 * - `runs_finished_children`: finished child runs by finish time, beside `runs_prunable` (top-level runs), so that
 *   the runs finished since a watermark are found without a scan. Only child runs pay for it.
 * A store migrated with history folds it by itself, a batch at a time, once a leader runs.
 */
export const sql = `
CREATE TABLE stats_rollup (
  pipeline   text             NOT NULL,
  minute     bigint           NOT NULL,  -- run creation time / 60,000
  kind       text             NOT NULL,  -- r: runs, s: steps, a: finished attempts
  name       text             NOT NULL,  -- step name ('' for runs)
  status     text             NOT NULL,  -- run or step status ('' for attempts)
  n          bigint           NOT NULL,
  seq        integer,                    -- least step position, for ordering
  tokens_in  double precision NOT NULL DEFAULT 0,
  tokens_out double precision NOT NULL DEFAULT 0,
  cost       double precision NOT NULL DEFAULT 0,
  hist       bytea,                      -- duration histogram: (bucket, count) int32 pairs
  PRIMARY KEY (pipeline, minute, kind, name, status)
);

CREATE TABLE stats_fold (
  id        integer PRIMARY KEY CHECK (id = 1),
  frontier  bigint  NOT NULL,
  watermark bigint  NOT NULL
);

CREATE INDEX runs_finished_children ON runs (finished_at) WHERE parent_run_id IS NOT NULL AND finished_at IS NOT NULL;
`;
