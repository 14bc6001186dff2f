/** Migration 2: tables of the HTTP server (API tokens, cron trigger slots) and an index for stats. */
export const sql = `
-- API tokens: only the sha256 of a token is stored; the token is shown once when created.
CREATE TABLE api_tokens (
  id         INTEGER PRIMARY KEY,
  hash       TEXT    NOT NULL UNIQUE,
  role       TEXT    NOT NULL,       -- viewer, operator, admin
  name       TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,                -- epoch ms; NULL = never
  revoked_at INTEGER
);

-- One row per fired cron slot: the primary key makes exactly one process start the run of a slot.
CREATE TABLE trigger_slots (
  pipeline   TEXT    NOT NULL,
  slot       INTEGER NOT NULL,       -- scheduled time, epoch ms
  claimed_at INTEGER NOT NULL,
  PRIMARY KEY (pipeline, slot)
);

CREATE INDEX attempts_by_run_step ON attempts (run_id, step);
`;
