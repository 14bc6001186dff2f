/**
 * Migration 15: durable waits.
 * - `step_waits` holds what a waiting step (`sleep`, `wait_for_event`) waits for, one row per step of a run: its
 *   wake time or deadline, the event it waits for and its match, and the event that satisfied it (set once, by a
 *   conditional update, so a wait takes at most one event). `step_started_at` ties it to one start of the step: a
 *   step run again from scratch (rollback, rewind) starts a new wait.
 * - `events_received` keeps the events emitted to the store, so a wait that begins shortly after an event still
 *   sees it (the lookback window); retention prunes them.
 */
export const sql = `
CREATE TABLE step_waits (
  run_id          TEXT    NOT NULL,
  step            TEXT    NOT NULL,
  kind            TEXT    NOT NULL,          -- sleep, event
  attempt         INTEGER NOT NULL,          -- the attempt that wakes it
  step_started_at INTEGER,
  began_at        INTEGER NOT NULL,
  wake_at         INTEGER,                   -- sleep: wake time; event: deadline (NULL: none)
  event           TEXT,
  match           TEXT,
  key_path        TEXT,                      -- a match event.PATH = VALUE: PATH, and VALUE as JSON, found by index
  key_value       TEXT,
  since           INTEGER,                   -- event: the lookback start
  context         TEXT,                      -- event: what the match reads besides the event (input, steps)
  event_id        INTEGER,
  matched_at      INTEGER,
  done            INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step)
);
CREATE INDEX step_waits_open ON step_waits (event, key_path, key_value) WHERE event_id IS NULL AND done = 0 AND event IS NOT NULL;
-- The approvals and gate blocks past their deadline, found without scanning steps (every worker polls this).
CREATE INDEX step_waits_due ON step_waits (wake_at) WHERE kind = 'approval' AND done = 0;

CREATE TABLE events_received (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT    NOT NULL,
  payload     TEXT,
  received_at INTEGER NOT NULL
);
CREATE INDEX events_received_by_name ON events_received (name, received_at);
CREATE INDEX events_received_at ON events_received (received_at);
`;
