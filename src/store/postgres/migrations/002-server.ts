/** Migration 2 of the PostgreSQL backend: tables of the HTTP server (API tokens, cron trigger slots), as on SQLite. */
export const sql = `
-- API tokens: only the sha256 of a token is stored; the token is shown once when created.
CREATE TABLE api_tokens (
  id         bigserial PRIMARY KEY,
  hash       text     NOT NULL UNIQUE,
  role       text     NOT NULL,       -- viewer, operator, admin
  name       text,
  created_at bigint   NOT NULL,
  expires_at bigint,                  -- epoch ms; NULL = never
  revoked_at bigint
);

-- One row per fired cron slot: the primary key makes exactly one process start the run of a slot.
CREATE TABLE trigger_slots (
  pipeline   text     NOT NULL,
  slot       bigint   NOT NULL,       -- scheduled time, epoch ms
  claimed_at bigint   NOT NULL,
  PRIMARY KEY (pipeline, slot)
);
`;
