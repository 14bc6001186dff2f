/**
 * The reaper's scan, written once for both backends: attempts whose lease expired (or whose owner is dead) are
 * re-queued, runs past their deadline fail. Runs in one transaction of the driver.
 */
import type { RunRow } from '../rows.js';
import type { ReapResult } from '../store.js';
import { all, get, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';
import { requeueExpired } from './outcomes.js';
import { getRun, terminate, type RunState } from './transitions.js';

/** Advisory lock key (PostgreSQL) held by the one reaper of all processes, for its transaction. */
export const REAPER_LOCK_KEY = 7_361_020_411_935_118;

const LIVE = `('queued', 'running', 'paused', 'waiting')`;
/** A lease as the reaper reads it off a step row. */
const LEASE = `id, run_id, name AS step, attempts AS number, fence, owner`;

const S = {
  // One reaper at a time across all processes; the others skip this round instead of queueing behind it. A
  // SQLite write transaction is alone already.
  reaperLock: sql('reaperLock', { sqlite: `SELECT 1 AS locked`, pg: `SELECT pg_try_advisory_xact_lock(${REAPER_LOCK_KEY}::bigint) AS locked` }),
  expiredLeases: sql('reapExpiredLeases', `SELECT ${LEASE} FROM steps WHERE attempt_status = 'running' AND lease_expires_at < $1`),
  runningOwners: sql('reapRunningOwners', `SELECT DISTINCT owner FROM steps WHERE attempt_status = 'running'`),
  ownerAttempts: sql('reapOwnerAttempts', `SELECT ${LEASE} FROM steps WHERE attempt_status = 'running' AND owner = $1`),
  // Without statistics SQLite's planner prefers the status index and walks every queued run on each reap (783 ms
  // a reap with 620,000 queued, against 3 ms through the partial deadline index).
  overdueRuns: sql('reapOverdueRuns', {
    sqlite: `SELECT id FROM runs INDEXED BY runs_deadline WHERE deadline_at IS NOT NULL AND deadline_at < $1 AND status IN ${LIVE}`,
    pg: `SELECT id FROM runs WHERE deadline_at IS NOT NULL AND deadline_at < $1 AND status IN ${LIVE}`,
  }),
  // Locks the runs in id order (PostgreSQL), so concurrent transactions never wait on each other in a cycle.
  lockRuns: sql('reapLockRuns', {
    sqlite: `SELECT id FROM runs WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id`,
    pg: `SELECT id FROM runs WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id FOR UPDATE`,
  }),
  // $1 id $2 now $3 fence $4 owner dead (1/0): expires the lease that was seen, unless it was renewed or finished since
  expireAttempt: sql(
    'reapExpireAttempt',
    `UPDATE steps SET attempt_status = 'expired', attempt_finished_at = $2, lease_expires_at = NULL,
       attempt_error = '{"code":"LEASE_LOST","message":"the worker lost its lease"}'
     WHERE id = $1 AND attempt_status = 'running' AND fence = $3 AND ($4::integer = 1 OR lease_expires_at < $2)`,
  ),
};

/** The reaper's scan for runs past their deadline, exported for the plan test. */
export const OVERDUE_RUNS = S.overdueRuns;

type Lease = { id: number; run_id: string; step: string; number: number; fence: number; owner: string; dead?: boolean };

/** Re-queues attempts whose lease expired or whose owner is dead (`isOwnerDead`), and fails runs past their deadline. */
export function* reap(tx: LedgerTx, now: number, isOwnerDead?: (owner: string) => boolean): Rule<ReapResult> {
  const result: ReapResult = { expired: 0, timedOutRuns: 0, events: [] };
  const lock = yield* get<{ locked: boolean | number }>(S.reaperLock, []);
  if (!lock?.locked) return result;
  const expired: Lease[] = yield* all<Lease>(S.expiredLeases, [now]);
  if (isOwnerDead) {
    for (const { owner } of yield* all<{ owner: string }>(S.runningOwners, [])) {
      if (isOwnerDead(owner)) for (const a of yield* all<Lease>(S.ownerAttempts, [owner])) expired.push({ ...a, dead: true });
    }
  }
  const overdue = (yield* all<{ id: string }>(S.overdueRuns, [now])).map((r) => r.id);
  if (expired.length === 0 && overdue.length === 0) return result;
  yield* all(S.lockRuns, [tx.json([...new Set([...expired.map((a) => a.run_id), ...overdue])])]);
  const seen = new Set<number>();
  for (const a of expired) {
    if (seen.has(a.id) || (yield* exec(S.expireAttempt, [a.id, now, a.fence, a.dead ? 1 : 0])) === 0) continue;
    seen.add(a.id);
    result.expired += 1;
    yield* requeueExpired(tx, a.run_id, a.step, now, result.events);
  }
  for (const id of overdue) {
    const run = (yield* getRun(id))!;
    // Another reaper may have ended it between the select and the lock.
    if (!isLive(run) || run.deadline_at === null || run.deadline_at >= now) continue;
    result.timedOutRuns += 1;
    yield* terminate(tx, result.events, run as RunState, 'failed', now, { code: 'RUN_TIMEOUT', message: 'the run exceeded its timeout' });
  }
  return result;
}

function isLive(run: RunRow): boolean {
  return run.status === 'queued' || run.status === 'running' || run.status === 'paused' || run.status === 'waiting';
}
