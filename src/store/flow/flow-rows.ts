import type { BucketState } from './flow-decide.js';
import type { BucketRow } from './flow-sql.js';

/** A bucket row as state; PostgreSQL returns bigint columns as text. */
export function toBucketState(row: BucketRow): BucketState {
  return { windowStart: Number(row.window_start), count: Number(row.count), nextAt: Number(row.next_at), firstAt: Number(row.first_at), runId: row.run_id };
}
