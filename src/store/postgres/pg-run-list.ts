import type { RunFilter } from '../store.js';

/**
 * The statement of `listRuns`: runs newest first, optionally of one pipeline and/or status, after a keyset
 * position. The indexes runs_by_created (migration 1) and migration 10's (pipeline, ...), (status, ...) serve
 * each form without a sort. Positional parameters, in this order when present: pipeline, status, after's
 * created_at and id, limit.
 */
export function listRunsStatement(filter: RunFilter): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.pipeline) where.push(`pipeline = $${values.push(filter.pipeline)}`);
  if (filter.status) where.push(`status = $${values.push(filter.status)}`);
  if (filter.after) where.push(`(created_at, id) < ($${values.push(filter.after.createdAt)}, $${values.push(filter.after.id)})`);
  const limit = `$${values.push(filter.limit ?? 50)}`;
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  return { sql, values };
}
