import { SluiceError } from '../../core/errors.js';
import type { ReapResult, RunEvent, TransitionResult } from '../store.js';
import type { Rule } from '../ledger/effects.js';
import { toRunRecord, type RunRow } from '../rows.js';
import { reap } from '../ledger/upkeep.js';
import type { SqliteCtx } from './sqlite-context.js';

// Lease reaping and run transitions of the SQLite store.

/** Re-queues attempts whose lease expired or whose owner is dead, and fails runs past their deadline (the ledger's scan). */
export function reapExpired(c: SqliteCtx, now: number, isOwnerDead?: (owner: string) => boolean): ReapResult {
  return c.write(() => c.transitions.run(reap(c.transitions, now, isOwnerDead)));
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
