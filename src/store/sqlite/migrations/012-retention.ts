/**
 * Migration 12: retention and cron everywhere.
 * - `step_cache_by_run` and `runs_prunable` let a prune find a run's cached outputs and the runs that finished
 *   before a time without scanning.
 * - `cron_slots` holds the slots of cron triggers claimed by a process, keyed by (pipeline, trigger, slot time):
 *   the INSERT that claims a slot succeeds for one process only, and the latest slot of a trigger is where
 *   catch-up starts after a time when nothing ran. `trigger` is the trigger's time zone and pattern.
 */
export const sql = `
CREATE INDEX step_cache_by_run ON step_cache (run_id);
CREATE INDEX runs_prunable ON runs (finished_at, id) WHERE parent_run_id IS NULL AND finished_at IS NOT NULL;

CREATE TABLE cron_slots (
  pipeline   TEXT    NOT NULL,
  trigger    TEXT    NOT NULL,
  slot       INTEGER NOT NULL,       -- scheduled time, epoch ms
  claimed_at INTEGER NOT NULL,
  PRIMARY KEY (pipeline, trigger, slot)
);
`;
