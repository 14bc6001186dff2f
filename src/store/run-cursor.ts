import { SluiceError } from '../core/errors.js';
import type { RunFilter, RunRecord, Store } from './store.js';

/**
 * Pages of runs, newest first, by keyset: a page ends at a run, and the next page starts after it in the order
 * (created_at DESC, id DESC), which both backends read from an index. The cursor handed to clients is opaque:
 * base64url of that position.
 */

/** The position after which a page starts: the last run of the page before. */
export interface RunPosition {
  createdAt: number;
  id: string;
}

/** One page of runs and the cursor of the next (null on the last page). */
export interface RunPage {
  runs: RunRecord[];
  nextCursor: string | null;
}

/** The opaque cursor of the position after `run`. */
export function encodeRunCursor(run: Pick<RunRecord, 'createdAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([run.createdAt, run.id])).toString('base64url');
}

/** The position of a cursor from {@link encodeRunCursor}. Throws `SluiceError('INPUT_INVALID')` naming `cursor`. */
export function decodeRunCursor(cursor: string): RunPosition {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const [createdAt, id] = Array.isArray(value) ? (value as unknown[]) : [];
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(createdAt) || typeof id !== 'string' || id === '') {
    throw new SluiceError('INPUT_INVALID', `cursor ${JSON.stringify(cursor.slice(0, 100))} is not a cursor of this list: pass the next_cursor of a previous page, or none for the first page`);
  }
  return { createdAt: createdAt as number, id };
}

/**
 * One page of `store.listRuns`: up to `limit` runs (default 50) after `cursor`, with the cursor of the next
 * page. Reads one run more than asked, so the last page says so (no cursor) without another round trip.
 */
export async function listRunPage(store: Store, filter: Omit<RunFilter, 'after'> & { cursor?: string | undefined }): Promise<RunPage> {
  const { cursor, ...rest } = filter;
  const limit = rest.limit ?? 50;
  const runs = await store.listRuns({ ...rest, limit: limit + 1, ...(cursor ? { after: decodeRunCursor(cursor) } : {}) });
  const more = runs.length > limit;
  const page = more ? runs.slice(0, limit) : runs;
  return { runs: page, nextCursor: more ? encodeRunCursor(page.at(-1)!) : null };
}
