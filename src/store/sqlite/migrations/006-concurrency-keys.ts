/**
 * Migration 6: concurrency keys. A run keeps the rendered `concurrency_key` of each of its keyed steps (JSON
 * object, step name -> key); each attempt of a keyed step carries its key and limit, and a claim skips an
 * attempt while `concurrency_limit` attempts with its key are running (in any run, in any process).
 */
export const sql = `
ALTER TABLE runs ADD COLUMN concurrency_keys TEXT;
ALTER TABLE attempts ADD COLUMN concurrency_key TEXT;
ALTER TABLE attempts ADD COLUMN concurrency_limit INTEGER;

-- Running attempts per key: what a claim counts before it leases a keyed attempt.
CREATE INDEX attempts_running_by_key ON attempts (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
`;
