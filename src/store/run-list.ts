import type { EventFilter, RunFilter } from './store.js';
import { waitingRunsCondition } from './waiting-runs.js';

// Statements built per call, written in PostgreSQL's style; SQLite runs them converted (ledger/effects.ts Statement).

/**
 * The statement of `listRuns`: runs newest first, optionally of one pipeline and/or status, after a keyset
 * position. The indexes runs_by_created (migration 1) and migration 10's (pipeline, ...), (status, ...) serve
 * each form without a sort, on both backends. Positional parameters, in this order when present: pipeline, status, after's
 * created_at and id, limit.
 */
export function listRunsStatement(filter: RunFilter): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.pipeline) where.push(`pipeline = $${values.push(filter.pipeline)}`);
  if (filter.status) {
    const param = `$${values.push(filter.status)}`;
    where.push(filter.status === 'waiting' ? waitingRunsCondition(param) : `status = ${param}`);
  }
  if (filter.after) where.push(`(created_at, id) < ($${values.push(filter.after.createdAt)}, $${values.push(filter.after.id)})`);
  const limit = `$${values.push(filter.limit ?? 50)}`;
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  return { sql, values };
}

/** The statement of `listEvents`: events after `afterId` in id order, optionally of one run and/or pipeline. */
export function listEventsStatement(filter: EventFilter): { sql: string; values: unknown[] } {
  const values: unknown[] = [filter.afterId ?? 0];
  const where = ['id > $1'];
  if (filter.runId) where.push(`run_id = $${values.push(filter.runId)}`);
  if (filter.pipeline) where.push(`pipeline = $${values.push(filter.pipeline)}`);
  const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${values.push(filter.limit ?? 1000)}`;
  return { sql, values };
}
