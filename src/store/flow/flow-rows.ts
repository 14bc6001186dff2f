import { checkSameRequest, IDEMPOTENCY_WINDOW_MS, runRequestHash } from '../idempotency.js';
import { toRunRecord, type RunRow } from '../rows.js';
import type { CreateRunRequest, CreatedRun } from '../store.js';
import type { BucketState } from './flow-decide.js';
import type { BucketRow } from './flow-sql.js';

/** A bucket row as state; PostgreSQL returns bigint columns as text. */
export function toBucketState(row: BucketRow): BucketState {
  return { windowStart: Number(row.window_start), count: Number(row.count), nextAt: Number(row.next_at), firstAt: Number(row.first_at), runId: row.run_id };
}

/** The run an idempotency key names (created in the last 24 h), as run creation answers it; undefined when none. */
export function idempotentRun(req: CreateRunRequest, existing: RunRow | undefined, now: number): CreatedRun | undefined {
  if (!existing || existing.created_at <= now - IDEMPOTENCY_WINDOW_MS) return undefined;
  checkSameRequest(existing, req, runRequestHash(req));
  return { run: toRunRecord(existing), created: false, events: [] };
}
