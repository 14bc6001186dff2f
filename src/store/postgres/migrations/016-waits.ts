/**
 * Migration 16: durable waits.
 * - `step_waits` holds what a waiting step (`sleep`, `wait_for_event`) waits for, one row per step of a run: its
 *   wake time or deadline, the event it waits for and its match, and the event that satisfied it (set once, by a
 *   conditional update, so a wait takes at most one event). `step_started_at` ties it to one start of the step: a
 *   step run again from scratch (rollback, rewind) starts a new wait.
 * - `events_received` keeps the events emitted to the store, so a wait that begins shortly after an event still
 *   sees it (the lookback window); retention prunes them.
 */
export const sql = `
CREATE TABLE step_waits (
  run_id          text    NOT NULL,
  step            text    NOT NULL,
  kind            text    NOT NULL,
  attempt         integer NOT NULL,
  step_started_at bigint,
  began_at        bigint  NOT NULL,
  wake_at         bigint,
  event           text,
  match           text,
  key_path        text,
  key_value       text,
  since           bigint,
  context         jsonb,
  event_id        bigint,
  matched_at      bigint,
  done            integer NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step)
);
CREATE INDEX step_waits_open ON step_waits (event, key_path, key_value) WHERE event_id IS NULL AND done = 0 AND event IS NOT NULL;
-- The approvals and gate blocks past their deadline, found without scanning steps (every worker polls this).
CREATE INDEX step_waits_due ON step_waits (wake_at) WHERE kind = 'approval' AND done = 0;

CREATE TABLE events_received (
  id          bigserial PRIMARY KEY,
  name        text    NOT NULL,
  payload     jsonb,
  received_at bigint  NOT NULL
);
CREATE INDEX events_received_by_name ON events_received (name, received_at);
CREATE INDEX events_received_at ON events_received (received_at);
`;
