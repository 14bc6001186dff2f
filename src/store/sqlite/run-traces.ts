/**
 * Statements of a run's `traceparent` (migration 11). Named parameters: id, traceparent.
 */
export const RUN_TRACE_SQL = {
  /** Set in the transaction that creates the run. */
  set: `UPDATE runs SET traceparent = @traceparent WHERE id = @id`,
  get: `SELECT traceparent FROM runs WHERE id = @id`,
} as const;
