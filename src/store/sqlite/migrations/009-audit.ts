/**
 * Migration 9: the audit of runs.
 * - A run started with an idempotency key keeps the sha256 of its request, so that the key reused with a different
 *   request is refused (IDEMPOTENCY_CONFLICT) instead of silently answering with the old run.
 * - The decisions table also holds people's decisions: `kind` is `gate` (a gate step decided) or `human` (a person
 *   approved or rejected a blocked step), with their `comment` and who decided (`decided_by`).
 */
export const sql = `
ALTER TABLE runs ADD COLUMN idempotency_hash TEXT;
ALTER TABLE gate_decisions ADD COLUMN kind TEXT NOT NULL DEFAULT 'gate';
ALTER TABLE gate_decisions ADD COLUMN comment TEXT;
ALTER TABLE gate_decisions ADD COLUMN decided_by TEXT;
`;
