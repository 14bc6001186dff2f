/**
 * Migration 18: a step row holds its live (or last) attempt; `attempts` keeps only a step's earlier attempts
 * (docs/store.md, "A step row holds its live attempt"). `steps` is rebuilt with an id of its own (the live
 * attempt's id) and the attempt's columns; each step's latest attempt row moves onto it and leaves `attempts`.
 * The queue, lease and keyed-lease indexes move to `steps`. `all_attempts` shows every attempt in `attempts`'
 * columns.
 */
export const sql = `
CREATE TEMP TABLE latest_attempts AS
  SELECT a.* FROM attempts a WHERE a.number = (SELECT max(m.number) FROM attempts m WHERE m.run_id = a.run_id AND m.step = a.step);
CREATE INDEX temp.latest_attempts_by_step ON latest_attempts (run_id, step);
CREATE TABLE steps_next (
  id                  INTEGER PRIMARY KEY,   -- also the id of the step's live attempt
  run_id              TEXT    NOT NULL,
  name                TEXT    NOT NULL,
  seq                 INTEGER NOT NULL,      -- position in the definition, for stable ordering
  status              TEXT    NOT NULL,
  waiting_on          INTEGER NOT NULL,      -- needs not yet settled
  priority            INTEGER NOT NULL DEFAULT 0,
  attempts            INTEGER NOT NULL DEFAULT 0, -- the number of the live or last attempt
  failures            INTEGER NOT NULL DEFAULT 0,
  output              TEXT,
  error               TEXT,
  cache_key           TEXT,
  force               INTEGER NOT NULL DEFAULT 0, -- bypass the cache (set by rollback)
  feedback            TEXT,                       -- JSON a gate passed when it asked this step to run again
  started_at          INTEGER,
  finished_at         INTEGER,
  cache_explain       TEXT,
  -- The live or last attempt (earlier ones are rows of attempts): NULL status before the first.
  attempt_status      TEXT,                       -- queued, held, running, then how it ended
  attempt_priority    INTEGER NOT NULL DEFAULT 0, -- the run's priority plus the step's
  attempt_force       INTEGER NOT NULL DEFAULT 0, -- bypass the step cache
  available_at        INTEGER,
  queued_at           INTEGER,
  owner               TEXT,
  fence               INTEGER NOT NULL DEFAULT 0, -- grows with every lease of every attempt of the step
  lease_expires_at    INTEGER,
  attempt_started_at  INTEGER,
  attempt_finished_at INTEGER,
  processing_ms       INTEGER,
  attempt_error       TEXT,
  usage               TEXT,
  attempt_feedback    TEXT,                       -- the step's feedback when this attempt was queued
  concurrency_key     TEXT,
  concurrency_limit   INTEGER,
  UNIQUE (run_id, name)
);
INSERT INTO steps_next (run_id, name, seq, status, waiting_on, priority, attempts, failures, output, error, cache_key, force,
    feedback, started_at, finished_at, cache_explain, attempt_status, attempt_priority, attempt_force, available_at,
    queued_at, owner, fence, lease_expires_at, attempt_started_at, attempt_finished_at, processing_ms, attempt_error,
    usage, attempt_feedback, concurrency_key, concurrency_limit)
  SELECT s.run_id, s.name, s.seq, s.status, s.waiting_on, s.priority, s.attempts, s.failures, s.output, s.error, s.cache_key,
    s.force, s.feedback, s.started_at, s.finished_at, s.cache_explain, a.status, COALESCE(a.priority, 0), COALESCE(a.force, 0),
    a.available_at, a.queued_at, a.owner, COALESCE(a.fence, 0), a.lease_expires_at, a.started_at, a.finished_at,
    a.processing_ms, a.error, a.usage, a.feedback, a.concurrency_key, a.concurrency_limit
  FROM steps s LEFT JOIN latest_attempts a ON a.run_id = s.run_id AND a.step = s.name
  ORDER BY s.rowid;
DELETE FROM attempts WHERE id IN (SELECT id FROM latest_attempts);
DROP TABLE latest_attempts;
DROP TABLE steps;
ALTER TABLE steps_next RENAME TO steps;
-- Only pending steps are in the index, so the many later transitions of a step never touch it.
CREATE INDEX steps_ready ON steps (run_id, waiting_on, priority DESC, seq) WHERE status = 'pending';
-- The queue: steps whose attempt is queued.
CREATE INDEX steps_queue ON steps (attempt_priority DESC, available_at, id) WHERE attempt_status = 'queued';
CREATE INDEX steps_leases ON steps (lease_expires_at) WHERE attempt_status = 'running';
-- Running attempts per key: what a claim counts before it leases a keyed attempt.
CREATE INDEX steps_running_by_key ON steps (concurrency_key) WHERE attempt_status = 'running' AND concurrency_key IS NOT NULL;
DROP INDEX attempts_queue;
DROP INDEX attempts_leases;
DROP INDEX attempts_running_by_key;
-- Every attempt: the earlier ones (rows of attempts) and each step's live or last one.
CREATE VIEW all_attempts AS
  SELECT id, run_id, step, number, status, priority, force, available_at, owner, fence, lease_expires_at, queued_at,
         started_at, finished_at, processing_ms, error, usage, feedback, concurrency_key, concurrency_limit
  FROM attempts
  UNION ALL
  SELECT id, run_id, name, attempts, attempt_status, attempt_priority, attempt_force, available_at, owner, fence,
         lease_expires_at, queued_at, attempt_started_at, attempt_finished_at, processing_ms, attempt_error, usage,
         attempt_feedback, concurrency_key, concurrency_limit
  FROM steps WHERE attempt_status IS NOT NULL;
`;
