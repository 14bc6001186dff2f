/**
 * Migration 1 of the PostgreSQL backend: the same tables as SQLite's 001-init. Times are epoch ms in bigint,
 * JSON in jsonb, booleans as smallint 0/1 so both backends share their row converters.
 * Append new migrations as new files; never edit a shipped one.
 */
export const sql = `
-- Pipelines: one row per (name, version); a version is immutable.
CREATE TABLE pipelines (
  name        text     NOT NULL,
  version     integer  NOT NULL,
  hash        text     NOT NULL,
  definition  jsonb    NOT NULL,      -- normalized Pipeline
  source      text,                   -- the text the user wrote, when known
  source_file text,
  created_at  bigint   NOT NULL,      -- epoch ms
  PRIMARY KEY (name, version)
);

-- Runs: one execution of one pipeline version with one input.
CREATE TABLE runs (
  id              text     PRIMARY KEY,
  pipeline        text     NOT NULL,
  version         integer  NOT NULL,
  status          text     NOT NULL,
  input           jsonb    NOT NULL,
  priority        integer  NOT NULL DEFAULT 0,
  force           smallint NOT NULL DEFAULT 0,
  max_parallel    integer  NOT NULL,
  selection       jsonb,              -- array of selected steps, NULL = all
  idempotency_key text,
  parent_run_id   text,               -- the run whose pipeline step started this one
  parent_step     text,
  remaining       integer  NOT NULL,  -- steps not yet in a terminal state
  active          integer  NOT NULL DEFAULT 0, -- steps queued, running or retrying
  failed          integer  NOT NULL DEFAULT 0, -- steps failed for good with on_failure: abort
  error           jsonb,
  run_at          bigint   NOT NULL,
  deadline_at     bigint,
  created_at      bigint   NOT NULL,
  started_at      bigint,
  finished_at     bigint
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, created_at DESC);
CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_failed ON runs (finished_at DESC) WHERE status = 'failed';
CREATE UNIQUE INDEX runs_idempotency ON runs (pipeline, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_deadline ON runs (deadline_at) WHERE deadline_at IS NOT NULL AND status IN ('queued', 'running', 'paused', 'waiting');

-- Steps: the state of each step of a run. The completed output is the checkpoint.
CREATE TABLE steps (
  run_id      text     NOT NULL,
  name        text     NOT NULL,
  seq         integer  NOT NULL,      -- position in the definition, for stable ordering
  status      text     NOT NULL,
  waiting_on  integer  NOT NULL,      -- needs not yet settled
  priority    integer  NOT NULL DEFAULT 0,
  attempts    integer  NOT NULL DEFAULT 0,
  failures    integer  NOT NULL DEFAULT 0,
  output      jsonb,
  error       jsonb,
  cache_key   text,
  force       smallint NOT NULL DEFAULT 0, -- bypass the cache (set by rollback)
  feedback    jsonb,                       -- what a gate passed when it asked this step to run again
  started_at  bigint,
  finished_at bigint,
  PRIMARY KEY (run_id, name)
);
CREATE INDEX steps_ready ON steps (run_id, waiting_on, priority DESC, seq) WHERE status = 'pending';

-- Attempts: one try of one step. The queue is the set of attempts in status 'queued'.
CREATE TABLE attempts (
  id               bigserial PRIMARY KEY,
  run_id           text     NOT NULL,
  step             text     NOT NULL,
  number           integer  NOT NULL,
  status           text     NOT NULL, -- queued, held, running, succeeded, cached, skipped, failed, expired, cancelled
  priority         integer  NOT NULL DEFAULT 0,
  force            smallint NOT NULL DEFAULT 0, -- bypass the step cache
  available_at     bigint   NOT NULL,
  owner            text,
  fence            integer  NOT NULL DEFAULT 0,
  lease_expires_at bigint,
  queued_at        bigint   NOT NULL,
  started_at       bigint,
  finished_at      bigint,
  processing_ms    integer,
  error            jsonb,             -- ErrorRecord: code, message, stack
  usage            jsonb,             -- StepUsage: model, tokensIn, tokensOut, cost
  feedback         jsonb,             -- the step's feedback when this attempt was queued
  UNIQUE (run_id, step, number)
);
CREATE INDEX attempts_queue ON attempts (priority DESC, available_at, id) WHERE status = 'queued';
CREATE INDEX attempts_leases ON attempts (lease_expires_at) WHERE status = 'running';
CREATE INDEX attempts_by_run ON attempts (run_id, step) WHERE status IN ('queued', 'held', 'running');

-- Every state transition is an event row. Ids come from a sequence: they only grow, but with concurrent
-- writers a transaction may commit a lower id after another committed a higher one.
CREATE TABLE events (
  id       bigserial PRIMARY KEY,
  run_id   text     NOT NULL,
  pipeline text     NOT NULL,
  step     text,
  type     text     NOT NULL,
  data     jsonb,
  at       bigint   NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, id);

-- Step logs (stdout/stderr of commands, ctx.log lines).
CREATE TABLE logs (
  id      bigserial PRIMARY KEY,
  run_id  text     NOT NULL,
  step    text     NOT NULL,
  attempt integer  NOT NULL,
  stream  text     NOT NULL,
  line    text     NOT NULL,
  at      bigint   NOT NULL
);
CREATE INDEX logs_by_run ON logs (run_id, step, id);

-- Per-item results of fan-out (map) steps: a retried or resumed step skips the items that succeeded.
CREATE TABLE step_items (
  run_id     text     NOT NULL,
  step       text     NOT NULL,
  idx        integer  NOT NULL,
  status     text     NOT NULL, -- succeeded, failed
  output     jsonb,
  error      jsonb,
  updated_at bigint   NOT NULL,
  PRIMARY KEY (run_id, step, idx)
);

-- Per-minute request and token counts per provider key (llm rate limits shared by every worker).
CREATE TABLE rate_windows (
  key      text     NOT NULL,
  "window" bigint   NOT NULL, -- epoch minute (quoted: a reserved word in PostgreSQL)
  requests integer  NOT NULL,
  tokens   bigint   NOT NULL,
  PRIMARY KEY (key, "window")
);

-- Every decision of a gate step: the audit trail of supervised runs.
CREATE TABLE gate_decisions (
  id          bigserial PRIMARY KEY,
  run_id      text     NOT NULL,
  step        text     NOT NULL,
  attempt     integer  NOT NULL,
  decision    text     NOT NULL, -- proceed, retry, block
  validations jsonb    NOT NULL,
  rules       jsonb    NOT NULL,
  retry_step  text,
  reason      text,
  budget_left integer,
  at          bigint   NOT NULL
);
CREATE INDEX gate_decisions_by_run ON gate_decisions (run_id, step, id);

-- Succeeded step outputs by cache key, reused across runs of the same pipeline version.
CREATE TABLE step_cache (
  pipeline   text    NOT NULL,
  cache_key  text    NOT NULL,
  output     jsonb,
  run_id     text    NOT NULL,
  step       text    NOT NULL,
  created_at bigint  NOT NULL,
  PRIMARY KEY (pipeline, cache_key)
);
`;
