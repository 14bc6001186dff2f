import { SluiceError } from '../../core/errors.js';
import type { StepItem } from '../../core/step-results.js';
import type { AttemptLease, ReapResult, RunEvent, TransitionResult } from '../store.js';
import type { Rule } from '../ledger/effects.js';
import { toJson, toRunRecord, type RunRow } from '../rows.js';
import { reap } from '../ledger/upkeep.js';
import type { SqliteCtx } from './sqlite-context.js';

// Lease reaping, rate budgets and item checkpoints of the SQLite store.

/** Re-queues attempts whose lease expired or whose owner is dead, and fails runs past their deadline (the ledger's scan). */
export function reapExpired(c: SqliteCtx, now: number, isOwnerDead?: (owner: string) => boolean): ReapResult {
  return c.write(() => c.transitions.run(reap(c.transitions, now, isOwnerDead)));
}

export function takeRate(c: SqliteCtx, key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): number {
  const window = Math.floor(now / 60_000);
  return c.write(() => {
    const used = (c.stmt('rateWindow').get({ key, window }) as { requests: number; tokens: number } | undefined) ?? { requests: 0, tokens: 0 };
    const overRequests = limits.rpm !== undefined && used.requests + 1 > limits.rpm;
    // A request larger than the whole token budget goes alone into an empty window rather than never.
    const overTokens = limits.tpm !== undefined && used.tokens > 0 && used.tokens + tokens > limits.tpm;
    if (overRequests || overTokens) return (window + 1) * 60_000 - now;
    c.stmt('takeRate').run({ key, window, tokens });
    if (used.requests === 0) c.stmt('pruneRates').run({ before: window - 5 });
    return 0;
  });
}

export function saveStepItems(c: SqliteCtx, lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): void {
  c.write(() => {
    if (!c.stmt('holdsLease').get({ id: lease.attemptId, fence: lease.fence, owner: lease.owner })) {
      throw new SluiceError('LEASE_LOST', `attempt ${lease.attemptId} of step ${step} no longer holds its lease; its item results are not recorded`);
    }
    for (const item of items) {
      const output = item.output === undefined ? null : toJson(item.output);
      const error = item.error === undefined ? null : JSON.stringify(item.error);
      c.stmt('putStepItem').run({ run_id: runId, step, idx: item.index, status: item.status, output, error, now });
    }
  });
}

/** Runs a ledger rule on run `runId` in one write transaction; throws RUN_NOT_FOUND when there is no such run. */
export function transitionRun(c: SqliteCtx, runId: string, rule: (run: RunRow, events: RunEvent[]) => Rule<unknown>): TransitionResult {
  return c.write(() => {
    const run = c.transitions.getRun(runId);
    if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${runId}`);
    const events: RunEvent[] = [];
    c.transitions.run(rule(run, events));
    return { run: toRunRecord(c.transitions.getRun(runId)!), events };
  });
}
