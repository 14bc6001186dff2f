import type { RunFilter } from '../store.js';
import { waitingRunsCondition } from '../waiting-runs.js';

/**
 * The statement of `listRuns`: runs newest first, optionally of one pipeline and/or status, after a keyset
 * position. Migration 10's indexes (created_at DESC, id DESC), (pipeline, ...), (status, ...) serve each form
 * without a sort. Named parameters: pipeline, status, after_created, after_id, limit.
 */
export function listRunsStatement(filter: RunFilter): { sql: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: filter.limit ?? 50 };
  if (filter.pipeline) {
    where.push('pipeline = @pipeline');
    params['pipeline'] = filter.pipeline;
  }
  if (filter.status) {
    where.push(filter.status === 'waiting' ? waitingRunsCondition('@status') : 'status = @status');
    params['status'] = filter.status;
  }
  if (filter.after) {
    where.push('(created_at, id) < (@after_created, @after_id)');
    params['after_created'] = filter.after.createdAt;
    params['after_id'] = filter.after.id;
  }
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT @limit`;
  return { sql, params };
}
