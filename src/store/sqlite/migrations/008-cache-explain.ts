/**
 * Migration 8: cache keys that see code and files. A cached result keeps the parts of its key (`parts`: JSON of
 * per-part hashes and input file hashes) and the content hashes of its declared outputs (`outputs`); a step
 * keeps why it ran or was cached (`cache_explain`). A miss is explained against the latest cached result of
 * the same step, found by `step_cache_by_step`.
 */
export const sql = `
ALTER TABLE step_cache ADD COLUMN parts TEXT;
ALTER TABLE step_cache ADD COLUMN outputs TEXT;
ALTER TABLE steps ADD COLUMN cache_explain TEXT;
CREATE INDEX step_cache_by_step ON step_cache (pipeline, step, created_at);
`;
