/** Migration 1: the initial schema. Append new migrations as new files; never edit a shipped one. */
export const sql = `
-- Pipelines: one row per (name, version); a version is immutable.
CREATE TABLE pipelines (
  name        TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  hash        TEXT    NOT NULL,
  definition  TEXT    NOT NULL,      -- normalized Pipeline as JSON
  source      TEXT,                  -- the text the user wrote, when known
  source_file TEXT,
  created_at  INTEGER NOT NULL,      -- epoch ms
  PRIMARY KEY (name, version)
);

-- Runs: one execution of one pipeline version with one input.
CREATE TABLE runs (
  id              TEXT    PRIMARY KEY,
  pipeline        TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  status          TEXT    NOT NULL,
  input           TEXT    NOT NULL,
  priority        INTEGER NOT NULL DEFAULT 0,
  force           INTEGER NOT NULL DEFAULT 0,
  max_parallel    INTEGER NOT NULL,
  selection       TEXT,              -- JSON array of selected steps, NULL = all
  idempotency_key TEXT,
  parent_run_id   TEXT,              -- the run whose pipeline step started this one
  parent_step     TEXT,
  remaining       INTEGER NOT NULL,  -- steps not yet in a terminal state
  active          INTEGER NOT NULL DEFAULT 0, -- steps queued, running or retrying
  failed          INTEGER NOT NULL DEFAULT 0, -- steps failed for good with on_failure: abort
  error           TEXT,
  run_at          INTEGER NOT NULL,
  deadline_at     INTEGER,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,
  finished_at     INTEGER
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, created_at DESC);
CREATE INDEX runs_failed ON runs (finished_at DESC) WHERE status = 'failed';
CREATE UNIQUE INDEX runs_idempotency ON runs (pipeline, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_deadline ON runs (deadline_at) WHERE deadline_at IS NOT NULL AND status IN ('queued', 'running', 'paused', 'waiting');

-- Steps: the state of each step of a run. The completed output is the checkpoint.
CREATE TABLE steps (
  run_id      TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  seq         INTEGER NOT NULL,      -- position in the definition, for stable ordering
  status      TEXT    NOT NULL,
  waiting_on  INTEGER NOT NULL,      -- needs not yet settled
  priority    INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0,
  failures    INTEGER NOT NULL DEFAULT 0,
  output      TEXT,
  error       TEXT,
  cache_key   TEXT,
  force       INTEGER NOT NULL DEFAULT 0, -- bypass the cache (set by rollback)
  feedback    TEXT,                       -- JSON a gate passed when it asked this step to run again
  started_at  INTEGER,
  finished_at INTEGER,
  PRIMARY KEY (run_id, name)
);
-- Only pending steps are in the index, so the many later transitions of a step never touch it.
CREATE INDEX steps_ready ON steps (run_id, waiting_on, priority DESC, seq) WHERE status = 'pending';

-- Attempts: one try of one step. The queue is the set of attempts in status 'queued'.
CREATE TABLE attempts (
  id               INTEGER PRIMARY KEY,
  run_id           TEXT    NOT NULL,
  step             TEXT    NOT NULL,
  number           INTEGER NOT NULL,
  status           TEXT    NOT NULL, -- queued, held, running, succeeded, cached, skipped, failed, expired, cancelled
  priority         INTEGER NOT NULL DEFAULT 0,
  force            INTEGER NOT NULL DEFAULT 0, -- bypass the step cache
  available_at     INTEGER NOT NULL,
  owner            TEXT,
  fence            INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  queued_at        INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  processing_ms    INTEGER,
  error            TEXT,             -- ErrorRecord JSON: code, message, stack
  usage            TEXT,             -- StepUsage JSON: model, tokensIn, tokensOut, cost
  feedback         TEXT,             -- the step's feedback when this attempt was queued
  UNIQUE (run_id, step, number)
);
CREATE INDEX attempts_queue ON attempts (priority DESC, available_at, id) WHERE status = 'queued';
CREATE INDEX attempts_leases ON attempts (lease_expires_at) WHERE status = 'running';

-- Every state transition is an event row. Ids only grow: rows are never deleted, so a reader can resume after
-- the last id it saw.
CREATE TABLE events (
  id       INTEGER PRIMARY KEY,
  run_id   TEXT    NOT NULL,
  pipeline TEXT    NOT NULL,
  step     TEXT,
  type     TEXT    NOT NULL,
  data     TEXT,
  at       INTEGER NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, id);

-- Step logs (stdout/stderr of commands, ctx.log lines).
CREATE TABLE logs (
  id      INTEGER PRIMARY KEY,
  run_id  TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  attempt INTEGER NOT NULL,
  stream  TEXT    NOT NULL,
  line    TEXT    NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX logs_by_run ON logs (run_id, step, id);

-- Per-item results of fan-out (map) steps: a retried or resumed step skips the items that succeeded.
CREATE TABLE step_items (
  run_id     TEXT    NOT NULL,
  step       TEXT    NOT NULL,
  idx        INTEGER NOT NULL,
  status     TEXT    NOT NULL, -- succeeded, failed
  output     TEXT,
  error      TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, idx)
);

-- Per-minute request and token counts per provider key (llm rate limits shared by every worker).
CREATE TABLE rate_windows (
  key      TEXT    NOT NULL,
  window   INTEGER NOT NULL, -- epoch minute
  requests INTEGER NOT NULL,
  tokens   INTEGER NOT NULL,
  PRIMARY KEY (key, window)
);

-- Every decision of a gate step: the audit trail of supervised runs.
CREATE TABLE gate_decisions (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT    NOT NULL,
  step        TEXT    NOT NULL,
  attempt     INTEGER NOT NULL,
  decision    TEXT    NOT NULL, -- proceed, retry, block
  validations TEXT    NOT NULL, -- JSON array
  rules       TEXT    NOT NULL, -- JSON array
  retry_step  TEXT,
  reason      TEXT,
  budget_left INTEGER,
  at          INTEGER NOT NULL
);
CREATE INDEX gate_decisions_by_run ON gate_decisions (run_id, step, id);

-- Succeeded step outputs by cache key, reused across runs of the same pipeline version.
CREATE TABLE step_cache (
  pipeline   TEXT    NOT NULL,
  cache_key  TEXT    NOT NULL,
  output     TEXT,
  run_id     TEXT    NOT NULL,
  step       TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (pipeline, cache_key)
);
`;
