import type { ClaimBatch } from '../store.js';
import { claimedBatch } from '../ledger/claims.js';
import type { ClaimedAttemptRow } from '../rows.js';
import { excessKeyedClaims } from '../concurrency-keys.js';
import type { SqliteCtx } from './sqlite-context.js';

// Claims of the SQLite store: leasing available attempts and starting their runs and steps.

/** Claims of at most this many attempts lease them one statement each. */
const LEASE_ONE_BY_ONE = 8;

/** Leases up to `limit` available attempts, after `leased` (attempts this transaction leased as it queued them), and starts them all. */
export function claimInTransaction(c: SqliteCtx, owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string }, leased: ClaimedAttemptRow[] = []): ClaimBatch {
  const picked = limit > 0 ? pickClaimable(c, limit, now, only.runId) : [];
  const rows: ClaimedAttemptRow[] = [];
  const lease = { owner, now, lease_until: now + leaseMs };
  const woke = new Set(picked.filter((p) => p.woke).map((p) => p.id));
  // Few are leased one by one (cheapest for a chain's next step); many in one statement.
  if (picked.length > LEASE_ONE_BY_ONE) rows.push(...(c.stmt('claimAttempts').all({ ...lease, ids: JSON.stringify(picked.map((p) => p.id)) }) as ClaimedAttemptRow[]));
  else {
    for (const { id } of picked) {
      const row = c.stmt('claimAttempt').get({ ...lease, id }) as ClaimedAttemptRow | undefined;
      if (row) rows.push(row);
    }
  }
  for (const r of rows) if (woke.has(r.id)) r.woke = 1;
  // A claim's attempts (and their events) come best first, as they were picked; those leased as they were made
  // were queued last.
  if (picked.length > LEASE_ONE_BY_ONE) rows.sort(byRank(picked));
  // The run of an attempt leased as it was made is running already: a result of its own was just accepted.
  const started = rows.length > 0 ? startRuns(c, rows, now) : new Set<string>();
  rows.push(...leased);
  if (rows.length === 0) return { attempts: [], events: [] };
  return claimedBatch(c.transitions, rows, (r) => c.header(r.run_id), started, now + leaseMs, now);
}

/** Orders leased rows as `picked` ranks them (a batch lease's RETURNING has no order). */
function byRank(picked: readonly Picked[]): (a: ClaimedAttemptRow, b: ClaimedAttemptRow) => number {
  const rank = new Map(picked.map((p, i) => [p.id, i]));
  return (a, b) => rank.get(a.id)! - rank.get(b.id)!;
}

type Picked = { id: number; concurrency_key: string | null; concurrency_limit: number | null; woke: number };

/** How many attempts a claim would find available now, up to `limit` (those with a concurrency key counted too). */
export function countClaimable(c: SqliteCtx, limit: number, now: number, runId: string | undefined): number {
  return pick(c, 'claimable', limit, now, runId).length;
}

/** The available attempts, best first; `claimableKeyed` asks with the concurrency-key condition. */
function pick(c: SqliteCtx, query: 'claimable' | 'claimableKeyed', limit: number, now: number, runId: string | undefined): Picked[] {
  if (runId === undefined) return c.stmt(query).all({ now, limit }) as Picked[];
  return c.stmt(query === 'claimable' ? 'claimableOfRun' : 'claimableKeyedOfRun').all({ now, limit, run_id: runId }) as Picked[];
}

/**
 * The attempts a claim takes, best first: asked without the concurrency-key condition unless a keyed attempt is among
 * them. Several attempts of one key may pass the condition together: those beyond the key's limit are left queued.
 */
function pickClaimable(c: SqliteCtx, limit: number, now: number, runId: string | undefined): Picked[] {
  const picked = pick(c, 'claimable', limit, now, runId);
  if (picked.every((p) => p.concurrency_key === null)) return picked;
  const keyed = pick(c, 'claimableKeyed', limit, now, runId);
  const running = (key: string) => (c.stmt('runningWithKey').get({ key }) as { n: number }).n + keyed.filter((p) => p.concurrency_key === key).length;
  const excess = excessKeyedClaims(keyed, running, (p) => p.concurrency_limit ?? 1);
  return keyed.filter((p) => !excess.has(p.id));
}

/** Starts the runs of claimed attempts (their steps started with their lease); returns the ids of those queued until now. */
function startRuns(c: SqliteCtx, rows: readonly ClaimedAttemptRow[], now: number): Set<string> {
  if (rows.length > 1) return c.batches.startRuns(rows, now);
  const id = rows[0]!.run_id;
  return new Set(c.stmt('startRun').run({ id, now }).changes > 0 ? [id] : []);
}
