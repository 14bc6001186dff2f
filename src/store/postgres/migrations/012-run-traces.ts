/**
 * Migration 12: the W3C `traceparent` a run was started with (over HTTP or by an event), so that every process
 * working on the run puts its spans in the caller's trace. NULL for most runs: their trace is derived from the run id.
 */
export const sql = `
ALTER TABLE runs ADD COLUMN traceparent text;
`;
