import type { AttemptResult, ClaimedAttempt, ClaimRequest, CompletionBatch, RunEvent } from '../store.js';
import { claimInTransaction } from './claims.js';
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
 * attempts, steps and (for runs with one result in the batch) run counters are each updated by one statement,
 * then each result is settled in order as {@link completeOne} would. Finishing every attempt and step first
 * changes nothing: settling one of these touches neither running attempts nor running steps.
 */
export function completePlain(c: SqliteCtx, results: AttemptResult[], now: number, batch: CompletionBatch, written: WrittenOutputs): void {
  const finished = c.batches.finishAttempts(results, now);
  const done: Array<{ r: AttemptResult; fin: FinishedAttempt; run: RunHeader; step: FinishedStep }> = [];
  const resultsOfRun = new Map<string, number>();
  let children = false;
  for (const r of results) {
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
    const output = toJson(r.output);
    written.record(run.id, fin.step, output);
    done.push({ r, fin, run, step: { runId: run.id, step: fin.step, status, output, cacheKey: r.cacheKey ?? null } });
  }
  c.batches.finishSteps(done.map((d) => d.step), now);
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
  const error = r.error ? JSON.stringify(r.error) : null;
  const usage = r.usage ? JSON.stringify(r.usage) : null;
  const fin = c.stmt('finishAttempt').get({ id: r.attemptId, fence: r.fence, owner: r.owner, status, now, processing_ms: r.processingMs, error, usage }) as
    | { run_id: string; step: string; number: number }
    | undefined;
  if (!fin) return false;
  if (!isPlainOutcome(r)) written.spoil(fin.run_id);
  if (status === 'failed') {
    c.transitions.run(recordFailure(c.transitions, c.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events));
    return true;
  }
  if (status === 'blocked' || status === 'rewound' || status === 'waiting') {
    c.transitions.run(completeSupervised(c.transitions, c.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events));
    return true;
  }
  if (status === 'spawned') {
    c.transitions.run(spawnChild(c.transitions, c.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events, createHooks(c)));
    return true;
  }
  if (r.decision) c.transitions.run(recordDecision(c.transitions, c.transitions.getRun(fin.run_id)!, fin.step, fin.number, r.decision, null, now, events));
  const run = c.header(fin.run_id);
  const output = toJson(r.output);
  if (c.stmt('finishStep').run({ run_id: run.id, name: fin.step, status, output, cache_key: r.cacheKey ?? null, now }).changes > 0) written.record(run.id, fin.step, output);
  if (writesCache(r)) c.transitions.run(recordCache(c.transitions, run, fin.step, r, output, now));
  c.transitions.emit(events, run, `step.${status as 'succeeded' | 'cached' | 'skipped'}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
  c.transitions.settle(events, run, fin.step, now);
  return true;
}

/** Records a batch of results in one transaction, then (with `claimNext`) leases the next attempts. */
export function completeAttempts(c: SqliteCtx, results: AttemptResult[], now: number, claimNext?: ClaimRequest): CompletionBatch {
  return c.write(() => {
    const batch: CompletionBatch = { accepted: [], rejected: [], events: [], queued: 0, claimed: [] };
    const written = new WrittenOutputs();
    // One result (a chain's next step) costs fewer statements one by one.
    if (results.length > 1 && results.every(isPlainOutcome)) completePlain(c, results, now, batch, written);
    else {
      for (const r of results) {
        if (completeOne(c, r, now, batch.events, written)) batch.accepted.push(r.attemptId);
        else batch.rejected.push(r.attemptId);
      }
    }
    batch.queued = batch.events.filter((e) => e.type === 'step.queued' || e.type === 'step.retrying').length;
    if (claimNext && claimNext.limit > 0) {
      const next = claimInTransaction(c, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {});
      batch.claimed = next.attempts;
      batch.events.push(...next.events);
      written.attach(next.attempts);
    }
    return batch;
  });
}

/**
 * The outputs a completion transaction wrote, as the JSON text stored (SQLite keeps the text as written), by run
 * and step. An attempt the same transaction leases gets those of its run (`ClaimedAttempt.upstream`), so that its
 * executor need not read them back: a chain's next step reads its input from here. A run for which the transaction
 * recorded anything but a step's plain end (a failure, a rewind, a block, a child run, a decision) is left out,
 * as such a rule may change what other steps hold.
 */
class WrittenOutputs {
  private readonly byRun = new Map<string, Record<string, string>>();
  private readonly spoiled = new Set<string>();

  record(runId: string, step: string, output: string): void {
    if (this.spoiled.has(runId)) return;
    let steps = this.byRun.get(runId);
    if (!steps) this.byRun.set(runId, (steps = {}));
    steps[step] = output;
  }

  spoil(runId: string): void {
    this.spoiled.add(runId);
    this.byRun.delete(runId);
  }

  attach(attempts: ClaimedAttempt[]): void {
    if (this.byRun.size === 0) return;
    for (const a of attempts) {
      const steps = this.byRun.get(a.runId);
      if (steps) a.upstream = steps;
    }
  }
}
