import type { EventFilter, RunEvent } from '../store.js';
import { toRunEvents, type EventRow } from '../rows.js';
import type { SqliteCtx } from './sqlite-context.js';

// Reads of run events, logs and item checkpoints of the SQLite store.

export function listEvents(c: SqliteCtx, filter: EventFilter): RunEvent[] {
  const where = ['id > @after'];
  const params: Record<string, unknown> = { after: filter.afterId ?? 0, limit: filter.limit ?? 1000 };
  if (filter.runId) {
    where.push('run_id = @run_id');
    params['run_id'] = filter.runId;
  }
  if (filter.pipeline) {
    where.push('pipeline = @pipeline');
    params['pipeline'] = filter.pipeline;
  }
  const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`;
  // A row holds at least one event past `after` (its last): `limit` rows hold enough.
  const events: RunEvent[] = [];
  for (const row of c.db.prepare(sql).all(params) as EventRow[]) {
    for (const e of toRunEvents(row)) if (e.id > (params['after'] as number)) events.push(e);
  }
  return events.slice(0, params['limit'] as number);
}
