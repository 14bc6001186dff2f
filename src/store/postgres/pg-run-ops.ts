import { SluiceError } from '../../core/errors.js';
import { toRunRecord, type RunRow } from '../rows.js';
import type {
  AttemptResult,
  ClaimRequest,
  CompletionBatch,
  CreateRunRequest,
  CreatedRun,
  CreatedRuns,
  RunEvent,
  TransitionResult,
} from '../store.js';
import type { Rule } from '../ledger/effects.js';
import { claimIn, completeBatch, createRunIn, insertNewRows, NewRows, type LockedRun, type Tx } from './pg-attempts.js';
import { pgJson } from './pg-json.js';
import { WrittenOutputs } from '../ledger/written-outputs.js';
import { lockBatchBuckets } from '../flow/flow-ops.js';
import { startWithFlow } from '../flow/flow-start.js';
import type { PgRunTransitions } from './pg-run-transitions.js';
import { sql } from './pg-store-sql.js';

// The run paths of the PostgreSQL store, each the body of one transaction (`tx`) that PostgresStore opens.

/** Creates runs one by one (each sees the idempotency keys of those before it), then leases with `claimNext`. */
export async function createRunsIn(tx: Tx, requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns> {
  const runs: CreatedRun[] = [];
  const later = new NewRows();
  await tx.t.run(lockBatchBuckets(requests));
  for (const req of requests) {
    // A request with an idempotency key must see the runs before it: write those first.
    if (req.idempotencyKey !== undefined || req.flow) await insertNewRows(tx, later);
    // A run under flow rules is written at once: the rules may move it right after.
    const create = (r: CreateRunRequest) => createRunIn(tx, r, now, req.flow ? undefined : later);
    runs.push(req.flow ? await tx.t.run(startWithFlow({ json: pgJson, create }, req, now)) : await create(req));
  }
  await insertNewRows(tx, later);
  const queued = runs.reduce((n, r) => n + r.events.filter((e) => e.type === 'step.queued').length, 0);
  const claimed = claimNext && claimNext.limit > 0 ? await claimIn(tx, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {}) : { attempts: [], events: [] };
  tx.wake = queued > claimed.attempts.length;
  return { runs, claimed };
}

/**
 * Records a batch of results, then (with `claimNext`) leases the next attempts. `locked`: the results' runs, when the
 * transaction locked them as it began.
 */
export async function completeAttemptsIn(tx: Tx, results: AttemptResult[], now: number, claimNext?: ClaimRequest, locked?: LockedRun[]): Promise<CompletionBatch> {
  const batch: CompletionBatch = { accepted: [], rejected: [], events: [], queued: 0, claimed: [] };
  locked ??= await sql<LockedRun>(tx.client, 'lockAttemptRuns', [results.map((r) => r.attemptId)]);
  const written = new WrittenOutputs();
  const applied = await completeBatch(tx, results, now, batch.events, new Map(locked.map((r) => [r.attempt_id, r])), written);
  for (const r of results) (applied.has(r.attemptId) ? batch.accepted : batch.rejected).push(r.attemptId);
  batch.queued = batch.events.filter((e) => e.type === 'step.queued' || e.type === 'step.retrying').length;
  if (claimNext && claimNext.limit > 0) {
    const next = await claimIn(tx, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {});
    batch.claimed = next.attempts;
    batch.events.push(...next.events);
    written.attach(next.attempts);
  }
  // A finished attempt with a concurrency key frees a slot that attempts waiting on its key may take.
  const freedKey = locked.some((r) => r.keyed);
  tx.wake = (batch.queued > 0 || freedKey) && (!claimNext || batch.claimed.length >= claimNext.limit || freedKey);
  return batch;
}

/**
 * Locks run `runId` and runs a ledger rule on it; throws RUN_NOT_FOUND when there is no such run. With
 * `wakeOnQueued`, a step it queues wakes idle workers.
 */
export async function transitionIn(tx: Tx, runId: string, rule: (t: PgRunTransitions, run: RunRow, events: RunEvent[]) => Rule<unknown>, wakeOnQueued = false): Promise<TransitionResult> {
  const run = await tx.t.lockRun(runId);
  if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${runId}`);
  const events: RunEvent[] = [];
  await tx.t.run(rule(tx.t, run, events));
  if (wakeOnQueued) tx.wake = events.some((e) => e.type === 'step.queued');
  return { run: toRunRecord((await tx.t.getRun(runId))!), events };
}
