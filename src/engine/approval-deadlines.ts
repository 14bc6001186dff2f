import { errorCodeOf } from '../core/errors.js';
import type { DueApproval } from '../core/waits.js';
import type { WaitPort } from '../store/waits-port.js';
import type { RunEvent } from '../store/store.js';

/** Approvals decided per check at most. */
const BATCH = 100;

/**
 * Decides approvals whose deadline passed (`with.timeout`), as their `on_timeout` says, every `everyMs`. Several
 * processes may check at once: a decision is taken once (the step must still be blocked); the others find it
 * decided and move on.
 */
export function startApprovalDeadlines(
  port: WaitPort,
  now: () => number,
  decide: (due: DueApproval) => Promise<unknown>,
  onError: (err: unknown) => void,
  everyMs: number,
): () => void {
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      for (const due of await port.dueApprovals(now(), BATCH)) {
        await decide(due).catch((err) => {
          if (errorCodeOf(err) !== 'ILLEGAL_TRANSITION') onError(err);
        });
      }
    } catch (err) {
      onError(err);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void check(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * An approval's deadline passed: its `on_timeout` decides (`step.timed_out`, then the decision recorded as by
 * `deadline`, in one transaction, so a person deciding at the same moment leaves no stray `step.timed_out`). Not
 * through the engine's `decide()`: a decision by deadline carries no response to check.
 */
export function decideAtDeadline(deps: { waits: WaitPort; now: () => number }, due: DueApproval): Promise<{ events: RunEvent[] }> {
  const decision = { decision: due.decision, comment: `no decision by ${new Date(due.deadline).toISOString()}`, by: 'deadline' };
  return deps.waits.timeOutApproval(due.runId, due.step, decision, deps.now());
}
