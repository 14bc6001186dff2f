/**
 * Migration 9: a run started with an idempotency key keeps the sha256 of its request, so that the key reused with a
 * different request is refused (IDEMPOTENCY_CONFLICT) instead of silently answering with the old run.
 */
export const sql = `
ALTER TABLE runs ADD COLUMN idempotency_hash text;
`;
