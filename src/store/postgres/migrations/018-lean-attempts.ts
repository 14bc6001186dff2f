/**
 * Migration 18: `attempts_by_run` goes. Every lookup of a step's live attempts is served by the unique index on
 * (run_id, step, number), whose first two columns are the same key; the partial index only cost an index write
 * on every attempt created and on every change of its status.
 */
export const sql = `
DROP INDEX IF EXISTS attempts_by_run;
`;
