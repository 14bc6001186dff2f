/**
 * What both drivers do with the attempts a claim leased: the `run.started` and `step.started` events, and the
 * attempts as workers get them. The claim statements themselves differ by dialect (PostgreSQL's skips locked
 * rows and writes its events in the same statement); the drivers keep those.
 */
import type { ClaimedAttemptRow, RunRow } from '../rows.js';
import type { ClaimBatch, ClaimedAttempt, RunEvent } from '../store.js';
import type { LedgerTx } from './ledger-tx.js';

/** The fields of a claimed attempt's run that a worker needs. */
export type ClaimedRun = Pick<RunRow, 'id' | 'pipeline' | 'version' | 'input'>;

/** A leased attempt as its worker gets it; `until` is when its lease expires. */
export function toClaimedAttempt(r: ClaimedAttemptRow, run: ClaimedRun, until: number): ClaimedAttempt {
  return {
    id: r.id,
    runId: r.run_id,
    step: r.step,
    number: r.number,
    fence: r.fence,
    pipeline: run.pipeline,
    version: run.version,
    // Parsed per claim so that no two attempts share (and could mutate) one object.
    input: JSON.parse(run.input),
    force: r.force === 1,
    leaseExpiresAt: until,
    ...(r.feedback === null ? {} : { feedback: JSON.parse(r.feedback) as unknown }),
  };
}

/**
 * The batch of leased `rows`, in their order: `run.started` before the first attempt of each run in `started`
 * (runs that were queued until this claim), `step.woken` for a sleep woken, `step.started` for each attempt, emitted into the transaction.
 */
export function claimedBatch(tx: Pick<LedgerTx, 'emit'>, rows: readonly ClaimedAttemptRow[], runOf: (r: ClaimedAttemptRow) => ClaimedRun, started: Set<string>, until: number, now: number): ClaimBatch {
  const events: RunEvent[] = [];
  const attempts: ClaimedAttempt[] = [];
  for (const r of rows) {
    const run = runOf(r);
    if (started.delete(r.run_id)) tx.emit(events, run, 'run.started', null, now);
    // A sleep's end, in the claim that runs the step again (one more event, no more statements).
    if (r.woke) tx.emit(events, run, 'step.woken', r.step, now);
    tx.emit(events, run, 'step.started', r.step, now, { attempt: r.number });
    attempts.push(toClaimedAttempt(r, run, until));
  }
  return { attempts, events };
}
