import type { ClaimBatch } from '../store.js';
import { claimedBatch } from '../ledger/claims.js';
import type { ClaimedAttemptRow } from '../rows.js';
import { excessKeyedClaims } from '../concurrency-keys.js';
import type { SqliteCtx } from './sqlite-context.js';

// Claims of the SQLite store: leasing available attempts and starting their runs and steps.

/** Claims of at most this many attempts lease them one statement each. */
const LEASE_ONE_BY_ONE = 8;

/** Leases up to `limit` available attempts, after `leased` (attempts this transaction inserted leased), and starts them all. */
export function claimInTransaction(c: SqliteCtx, owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string }, leased: ClaimedAttemptRow[] = []): ClaimBatch {
  const picked = limit > 0 ? pickClaimable(c, limit, now, only.runId) : [];
  const rows: ClaimedAttemptRow[] = [...leased];
  const lease = { owner, now, lease_until: now + leaseMs };
  // Few are leased one by one (cheapest for a chain's next step); many in one statement.
  if (picked.length > LEASE_ONE_BY_ONE) rows.push(...(c.stmt('claimAttempts').all({ ...lease, ids: JSON.stringify(picked.map((p) => p.id)) }) as ClaimedAttemptRow[]));
  else {
    for (const { id } of picked) {
      const row = c.stmt('claimAttempt').get({ ...lease, id }) as ClaimedAttemptRow | undefined;
      if (row) rows.push(row);
    }
  }
  // Events of a claim come in attempt id order, as on PostgreSQL.
  rows.sort((a, b) => a.id - b.id);
  const excess = rows.some((r) => r.concurrency_key !== null) ? trimKeyedClaims(c, rows) : null;
  const kept = excess ? rows.filter((r) => !excess.has(r.id)) : rows;
  if (kept.length === 0) return { attempts: [], events: [] };
  const started = kept.length > 1 ? c.batches.startClaimed(kept, now) : startClaimed(c, kept[0]!, now);
  return claimedBatch(c.transitions, kept, (r) => c.header(r.run_id), started, now + leaseMs, now);
}

type Picked = { id: number; concurrency_key: string | null };

/** How many attempts a claim would find available now, up to `limit` (those with a concurrency key counted too). */
export function countClaimable(c: SqliteCtx, limit: number, now: number, runId: string | undefined): number {
  return pick(c, 'claimable', limit, now, runId).length;
}

/** The available attempts, best first; `claimableKeyed` asks with the concurrency-key condition. */
function pick(c: SqliteCtx, query: 'claimable' | 'claimableKeyed', limit: number, now: number, runId: string | undefined): Picked[] {
  if (runId === undefined) return c.stmt(query).all({ now, limit }) as Picked[];
  return c.stmt(query === 'claimable' ? 'claimableOfRun' : 'claimableKeyedOfRun').all({ now, limit, run_id: runId }) as Picked[];
}

/** The attempts a claim takes, best first: asked without the concurrency-key condition unless a keyed attempt is among them. */
function pickClaimable(c: SqliteCtx, limit: number, now: number, runId: string | undefined): Picked[] {
  const picked = pick(c, 'claimable', limit, now, runId);
  if (picked.every((p) => p.concurrency_key === null)) return picked;
  return pick(c, 'claimableKeyed', limit, now, runId);
}

/** Starts the run and step of one claimed attempt; returns the run's id when it was queued until now. */
export function startClaimed(c: SqliteCtx, claimed: { run_id: string; step: string }, now: number): Set<string> {
  const started = c.stmt('startRun').run({ id: claimed.run_id, now }).changes > 0;
  c.stmt('startStep').run({ run_id: claimed.run_id, name: claimed.step, now });
  return new Set(started ? [claimed.run_id] : []);
}

/**
 * Several attempts of one key may pass the claim's condition together: those beyond the key's limit go back
 * to the queue, untouched but for their fence. Returns their ids.
 */
export function trimKeyedClaims(c: SqliteCtx, rows: Array<{ id: number; concurrency_key: string | null; concurrency_limit: number | null }>): Set<number> {
  const running = (key: string) => (c.stmt('runningWithKey').get({ key }) as { n: number }).n;
  const excess = excessKeyedClaims(rows, running, (r) => r.concurrency_limit ?? 1);
  for (const id of excess) c.stmt('unclaim').run({ id });
  return excess;
}
