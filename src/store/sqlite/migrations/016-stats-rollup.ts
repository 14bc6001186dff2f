/**
 * Migration 16: the pipeline stats rollup (src/store/stats/rollup.ts).
 * - `stats_rollup`: one row per pipeline and minute of run creation: counts, sums and duration histograms of the
 *   minute's runs (by status), their steps (by name and status) and their finished attempts (by step), packed
 *   in `cells`, and run by run in `runs` (what a series reads of a minute its bucket edge cuts). The leader's
 *   fold writes it; nothing on the run path does.
 * - `stats_fold`: how far the fold has come (minutes before `frontier` are folded, as of `watermark`, epoch ms).
 * - `runs_finished_children`: finished child runs by finish time, beside `runs_prunable` (top-level runs), so that
 *   the runs finished since a watermark are found without a scan. Only child runs pay for it.
 * A store migrated with history folds it by itself, a batch at a time, once a leader runs.
 */
export const sql = `
CREATE TABLE stats_rollup (
  pipeline TEXT    NOT NULL,
  minute   INTEGER NOT NULL,            -- run creation time / 60,000
  children INTEGER NOT NULL DEFAULT 0,  -- child runs among them
  cells    BLOB    NOT NULL,            -- counts, sums and histograms (src/store/stats/tally.ts, encode)
  runs     BLOB,                        -- run by run, for series (src/store/stats/run-detail.ts)
  PRIMARY KEY (pipeline, minute)
) WITHOUT ROWID;

CREATE TABLE stats_fold (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  frontier  INTEGER NOT NULL,
  watermark INTEGER NOT NULL
);

CREATE INDEX runs_finished_children ON runs (finished_at) WHERE parent_run_id IS NOT NULL AND finished_at IS NOT NULL;
`;
