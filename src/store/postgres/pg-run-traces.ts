/**
 * Statements of a run's `traceparent` (migration 12). Parameters: $1 the run id, $2 the traceparent.
 */
export const PG_RUN_TRACE_SQL = {
  /** Set in the transaction that creates the run. */
  set: `UPDATE runs SET traceparent = $2 WHERE id = $1`,
  get: `SELECT traceparent FROM runs WHERE id = $1`,
} as const;
