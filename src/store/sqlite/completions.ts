import type { AttemptResult, ClaimRequest, CompletionBatch, RunEvent } from '../store.js';
import { WrittenOutputs } from '../ledger/written-outputs.js';
import { claimInTransaction, countClaimable } from './claims.js';
import type { DirectLease } from '../ledger/ledger-tx.js';
import { toJson } from '../rows.js';
import { completeSupervised, recordFailure } from '../ledger/outcomes.js';
import { recordDecision } from '../ledger/supervision.js';
import { recordCache, writesCache } from '../ledger/cache.js';
import { isPlainOutcome, type FinishedAttempt, type FinishedStep } from './attempt-batches.js';
import type { RunHeader, SqliteCtx } from './sqlite-context.js';
import { createHooks } from './run-create.js';
import { spawnChild } from '../ledger/run-create.js';

// Completions of the SQLite store: recording attempt results, the cache, and child runs of `pipeline` steps.

/**
 * Results that only finish their steps (succeeded, cached, skipped), recorded with a few statements per batch:
 * attempts with their steps, and (for runs with one result in the batch) run counters are each updated by one
 * statement, then each result is settled in order as {@link completeOne} would. Finishing every step first changes
 * nothing: settling one of these touches no running step.
 */
export function completePlain(c: SqliteCtx, results: AttemptResult[], now: number, batch: CompletionBatch, written: WrittenOutputs): void {
  const outputs = results.map((r) => toJson(r.output));
  const finished = c.batches.finishSteps(results, outputs, now);
  const done: Array<{ r: AttemptResult; fin: FinishedAttempt; run: RunHeader; step: FinishedStep }> = [];
  const resultsOfRun = new Map<string, number>();
  let children = false;
  for (const [i, r] of results.entries()) {
    const fin = finished.get(r.attemptId);
    if (!fin) {
      batch.rejected.push(r.attemptId);
      continue;
    }
    // A result given twice is recorded once, as one by one: the second finds its attempt finished.
    finished.delete(r.attemptId);
    batch.accepted.push(r.attemptId);
    const run = c.header(fin.run_id);
    if (run.parentRunId !== null) children = true;
    resultsOfRun.set(run.id, (resultsOfRun.get(run.id) ?? 0) + 1);
    const status = r.outcome as FinishedStep['status'];
    const output = outputs[i]!;
    written.record(run.id, fin.step, output);
    done.push({ r, fin, run, step: { runId: run.id, step: fin.step, status, output, cacheKey: r.cacheKey ?? null } });
  }
  // A child run that ends settles its parent's step in between: then every run settles on its own, in order.
  const once = children ? [] : [...resultsOfRun].filter(([, n]) => n === 1).map(([id]) => id);
  const settled = c.batches.settleRuns(once, now);
  for (const { r, fin, run, step } of done) {
    if (writesCache(r)) c.transitions.run(recordCache(c.transitions, run, fin.step, r, step.output, now));
    c.transitions.emit(batch.events, run, `step.${step.status}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
    const counters = settled.get(run.id);
    if (!counters) {
      c.transitions.settle(batch.events, run, fin.step, now);
      continue;
    }
    c.transitions.releaseDependents(run, fin.step);
    c.transitions.afterSettle(batch.events, counters, now);
  }
}

export function completeOne(c: SqliteCtx, r: AttemptResult, now: number, events: RunEvent[], written: WrittenOutputs): boolean {
  const status = r.outcome;
  const usage = r.usage ? JSON.stringify(r.usage) : null;
  const held = { id: r.attemptId, fence: r.fence, owner: r.owner, status, now, processing_ms: r.processingMs, usage };
  if (status === 'succeeded' || status === 'cached' || status === 'skipped') {
    const output = toJson(r.output);
    const fin = c.stmt('finishAttemptAndStep').get({ ...held, output, cache_key: r.cacheKey ?? null }) as { run_id: string; step: string; number: number; finished: number } | undefined;
    if (!fin) return false;
    if (r.decision) written.spoil(fin.run_id);
    else if (fin.finished) written.record(fin.run_id, fin.step, output);
    // A gate that decided `proceed` succeeds; its decision goes to the audit table too.
    if (r.decision) c.transitions.run(recordDecision(c.transitions, c.transitions.getRun(fin.run_id)!, fin.step, fin.number, r.decision, null, now, events));
    const run = c.header(fin.run_id);
    if (writesCache(r)) c.transitions.run(recordCache(c.transitions, run, fin.step, r, output, now));
    c.transitions.emit(events, run, `step.${status}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
    c.transitions.settle(events, run, fin.step, now);
    return true;
  }
  const fin = c.stmt('finishAttempt').get({ ...held, error: r.error ? JSON.stringify(r.error) : null }) as { run_id: string; step: string; number: number } | undefined;
  if (!fin) return false;
  written.spoil(fin.run_id);
  const run = c.transitions.getRun(fin.run_id)!;
  if (status === 'failed') c.transitions.run(recordFailure(c.transitions, run, fin.step, fin.number, r, now, events));
  else if (status === 'spawned') c.transitions.run(spawnChild(c.transitions, run, fin.step, fin.number, r, now, events, createHooks(c)));
  else c.transitions.run(completeSupervised(c.transitions, run, fin.step, fin.number, r, now, events));
  return true;
}

/** Records a batch of results in one transaction, then (with `claimNext`) leases the next attempts. */
export function completeAttempts(c: SqliteCtx, results: AttemptResult[], now: number, claimNext?: ClaimRequest): CompletionBatch {
  return c.write(() => {
    const batch: CompletionBatch = { accepted: [], rejected: [], events: [], queued: 0, claimed: [] };
    const written = new WrittenOutputs();
    const lease = directLease(c, results, now, claimNext);
    c.transitions.directLease = lease;
    try {
      // One result (a chain's next step) costs fewer statements one by one.
      if (results.length > 1 && results.every(isPlainOutcome)) completePlain(c, results, now, batch, written);
      else {
        for (const r of results) {
          if (completeOne(c, r, now, batch.events, written)) batch.accepted.push(r.attemptId);
          else batch.rejected.push(r.attemptId);
        }
      }
    } finally {
      c.transitions.directLease = null;
    }
    batch.queued = batch.events.filter((e) => e.type === 'step.queued' || e.type === 'step.retrying').length;
    if (claimNext && claimNext.limit > 0) {
      const leased = lease?.rows ?? [];
      const next = claimInTransaction(c, claimNext.owner, claimNext.limit - leased.length, claimNext.leaseMs, now, claimNext.only ?? {}, leased);
      batch.claimed = next.attempts;
      batch.events.push(...next.events);
      written.attach(next.attempts);
    }
    return batch;
  });
}

/**
 * For one result that ends its step (a chain's step): when its claim asks for more attempts than are available, what
 * the settle queues for now will all be claimed, so it is inserted leased (DirectLease). Several results, or a
 * failure, settle in an order in which an attempt queued early could be cancelled by a later rule, so they queue
 * as usual.
 */
function directLease(c: SqliteCtx, results: AttemptResult[], now: number, claimNext: ClaimRequest | undefined): DirectLease | null {
  if (!claimNext || results.length !== 1 || !isPlainOutcome(results[0]!)) return null;
  const room = claimNext.limit - countClaimable(c, claimNext.limit, now, claimNext.only?.runId);
  return room > 0 ? { owner: claimNext.owner, now, until: now + claimNext.leaseMs, room, runId: claimNext.only?.runId, rows: [] } : null;
}
