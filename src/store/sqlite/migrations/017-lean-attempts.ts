/**
 * Migration 17: `attempts_by_run_step` goes. Every lookup of a step's attempts is served by the unique index on
 * (run_id, step, number), whose first two columns are the same key, so the second index only cost a page write on
 * every attempt created.
 */
export const sql = `
DROP INDEX IF EXISTS attempts_by_run_step;
`;
