/**
 * What an attempt's outcome and a person's command do to a run, written once for both backends: a failure
 * (retry, continue or abort), a gate or approval steering the run, a child run ending, pause / resume / cancel /
 * retry, and a rollback to a step. Each rule runs in the caller's transaction, which holds the run.
 */
import { SluiceError } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import type { Step } from '../../core/model.js';
import { assertRunTransition } from '../../core/state-machine.js';
import { afterFailure } from '../../core/step-policy.js';
import type { RunRow } from '../rows.js';
import type { AttemptResult, RunAction, RunEvent } from '../store.js';
import { get, run as exec, sql, type Rule } from './effects.js';
import type { EndStatus, LedgerTx, StoredError } from './ledger-tx.js';
import { block, recordDecision, resetStepStmt, rewind } from './supervision.js';
import { beginWait, recordDeadline } from './waits.js';
import { abort, clearStepItems, finishIfDone, getRun, getStep, lockRun, pipelineOf, promote, rebuild, setRunStatus, settle, terminate } from './transitions.js';
import { cancelStepAttempts, holdRunAttempts, insertAttempt, releaseRunAttempts } from './attempt-rows.js';

const S = {
  finishStep: sql(
    'outcomeFinishStep',
    `UPDATE steps SET status = $3, output = $4::jsonb, cache_key = $5, error = NULL, finished_at = $6 WHERE run_id = $1 AND name = $2 AND status = 'running'`,
  ),
  failStep: sql(
    'outcomeFailStep',
    `UPDATE steps SET status = $3, failures = failures + 1, error = $4::jsonb,
       finished_at = CASE WHEN $3 = 'failed' THEN $5::bigint ELSE NULL END,
       attempts = attempts + CASE WHEN $3 = 'retrying' THEN 1 ELSE 0 END
     WHERE run_id = $1 AND name = $2 AND status = 'running'
     RETURNING failures, attempts, force, feedback`,
  ),
  resetFailedSteps: sql('outcomeResetFailedSteps', `UPDATE steps SET status = 'pending', error = NULL, finished_at = NULL, failures = 0 WHERE run_id = $1 AND status IN ('failed', 'cancelled')`),
  requeueStep: sql('outcomeRequeueStep', `UPDATE steps SET status = 'queued', attempts = attempts + 1 WHERE run_id = $1 AND name = $2 AND status = 'running' RETURNING attempts, force, feedback`),
};

type Requeued = { attempts: number; force: number; feedback: string | null };

/** A step missing from its definition (it cannot be): no retry, and it fails the run. */
const UNDEFINED_STEP: Pick<Step, 'retry' | 'onFailure' | 'priority'> = {
  retry: { attempts: 0, backoff: 'fixed', delayMs: 0, maxDelayMs: 0, jitter: false },
  onFailure: 'abort',
  priority: 0,
};

/** An attempt failed: the step policy retries the step, or fails it and the run continues or aborts. */
export function* recordFailure(tx: LedgerTx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): Rule<void> {
  const compiled = yield* pipelineOf(tx, run);
  const def = compiled.byName.get(step) ?? UNDEFINED_STEP;
  const stepRow = (yield* getStep(run.id, step))!;
  const live = run.status === 'running' || run.status === 'queued' || run.status === 'paused';
  const action = afterFailure({
    step: def,
    failFast: compiled.definition.failFast,
    failures: stepRow.failures + 1,
    retryable: r.retryable,
    live,
    // The executor drew the delay (its jitter source, at least a Retry-After) when the try failed.
    delayMs: r.retryDelayMs ?? 0,
  });
  const errorText = r.error ? tx.json(r.error) : null;
  const errorData = r.error ? { code: r.error.code, message: r.error.message } : undefined;
  if (action.kind === 'retry') {
    const row = (yield* get<Requeued>(S.failStep, [run.id, step, 'retrying', errorText, now]))!;
    yield* insertAttempt(tx, run, step, { number: row.attempts, at: now, availableAt: now + action.delayMs, priority: def.priority, force: row.force === 1, feedback: row.feedback });
    tx.emit(events, run, 'step.retrying', step, now, { attempt: number, next_attempt: row.attempts, delay_ms: action.delayMs, error: errorData, duration_ms: r.processingMs });
    return;
  }
  yield* get(S.failStep, [run.id, step, 'failed', errorText, now]);
  tx.emit(events, run, 'step.failed', step, now, { attempt: number, error: errorData, duration_ms: r.processingMs });
  if (action.kind === 'continue') yield* settle(tx, events, run, step, now);
  else yield* abort(tx, events, run, step, now, true, action.cancel);
}

/** A gate or approval steered the run: block it for a human, or rewind it to an upstream step (the step policy weighs its budget). */
export function* completeSupervised(tx: LedgerTx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): Rule<void> {
  if (r.outcome === 'blocked' && r.wait) yield* recordDeadline(tx, run, step, r.wait, now);
  if (r.outcome === 'blocked') return yield* block(tx, run, step, number, r, now, events);
  if (r.outcome === 'waiting') return yield* beginWait(tx, run, step, number, r, now, events);
  const verdict = yield* rewind(tx, run, step, number, r, now, events);
  if (verdict.kind === 'rewind') return tx.wake();
  const decision = { ...(r.decision ?? { validations: [], rules: [] }), decision: 'block' as const, reason: verdict.reason };
  if (verdict.kind === 'block' && r.wait) yield* recordDeadline(tx, run, step, r.wait, now);
  if (verdict.kind === 'block') return yield* block(tx, run, step, number, { ...r, outcome: 'blocked', decision }, now, events);
  yield* recordDecision(tx, run, step, number, { ...decision, reason: `${verdict.reason}; failing` }, 0, now, events);
  const error = verdict.error as StoredError;
  yield* recordFailure(tx, run, step, number, { ...r, outcome: 'failed', error, retryable: false }, now, events);
}

/** A child run ended: its parent's `pipeline` step succeeds with the child's outputs, or fails. */
export function* endChild(tx: LedgerTx, childId: string, status: EndStatus, now: number, events: RunEvent[]): Rule<void> {
  const child = yield* getRun(childId);
  if (!child?.parent_run_id || !child.parent_step) return;
  // The parent's counters change after it: PostgreSQL holds its row (lock order child -> parent; a deadlock with a
  // parent cancelling its children is detected and the transaction retried).
  const parent = yield* lockRun(child.parent_run_id);
  const step = yield* getStep(child.parent_run_id, child.parent_step);
  if (!parent || step?.status !== 'running') return;
  const attempt = step.attempts;
  tx.wake();
  if (status === 'succeeded') {
    const output = { child_run: childId, status, outputs: yield* leafOutputs(tx, child) };
    yield* exec(S.finishStep, [parent.id, step.name, 'succeeded', tx.json(output), null, now]);
    tx.emit(events, parent, 'step.succeeded', step.name, now, { attempt, child_run: childId });
    yield* settle(tx, events, parent, step.name, now);
    return;
  }
  const error: StoredError = { code: 'CHILD_RUN_FAILED', message: `child run ${childId} of pipeline ${child.pipeline} ${status}`, retryable: status === 'failed' };
  const failure: AttemptResult = { attemptId: 0, fence: 0, owner: '', outcome: 'failed', error, retryable: error.retryable, processingMs: 0, retryDelayMs: 0 };
  yield* recordFailure(tx, parent, step.name, attempt, failure, now, events);
}

/** The outputs of a run's final steps (those nothing else needs), by step name. */
function* leafOutputs(tx: LedgerTx, run: RunRow): Rule<Record<string, unknown>> {
  const { definition, dependents } = yield* pipelineOf(tx, run);
  const out: Record<string, unknown> = {};
  for (const s of definition.steps) {
    if ((dependents.get(s.name) ?? []).length > 0) continue;
    const row = yield* getStep(run.id, s.name);
    out[s.name] = row?.output ? JSON.parse(row.output) : null;
  }
  return out;
}

/** A person's command on a run: pause, resume, cancel, or retry (its failed, cancelled and never-started steps). */
export function* controlRun(tx: LedgerTx, run: RunRow, action: RunAction, now: number, events: RunEvent[]): Rule<void> {
  const runId = run.id;
  if (action === 'pause') {
    assertRunTransition(runId, run.status, 'paused');
    yield* setRunStatus(tx, events, run, 'paused', now);
    yield* holdRunAttempts(runId);
  } else if (action === 'resume') {
    if (run.status !== 'paused') throw new SluiceError('ILLEGAL_TRANSITION', `run ${runId} is ${run.status}; only a paused run can be resumed`);
    yield* setRunStatus(tx, events, run, 'running', now, { event: 'run.resumed' });
    yield* releaseRunAttempts(runId);
    yield* finishIfDone(tx, events, yield* promote(tx, events, (yield* getRun(runId))!, now), now);
    tx.wake();
  } else if (action === 'cancel') {
    assertRunTransition(runId, run.status, 'cancelled');
    yield* terminate(tx, events, run, 'cancelled', now);
  } else {
    if (run.status !== 'failed' && run.status !== 'cancelled') {
      throw new SluiceError('ILLEGAL_TRANSITION', `run ${run.id} is ${run.status}; only a failed or cancelled run can be retried`);
    }
    yield* exec(S.resetFailedSteps, [run.id]);
    yield* setRunStatus(tx, events, run, 'running', now, { event: 'run.resumed', data: { action: 'retry' } });
    yield* rebuild(tx, events, run.id, now);
    tx.wake();
  }
}

/** Puts a step and everything after it (within the run's selection) back to pending, and the run back to running. */
export function* rollbackRun(tx: LedgerTx, run: RunRow, step: string, now: number, events: RunEvent[]): Rule<void> {
  const compiled = yield* pipelineOf(tx, run);
  if (!compiled.byName.has(step)) throw new SluiceError('STEP_NOT_FOUND', `pipeline ${run.pipeline} has no step ${step}`);
  const affected = [...descendants(compiled.definition, step)];
  const selected = run.selection ? new Set(JSON.parse(run.selection) as string[]) : null;
  for (const name of affected) {
    if (selected && !selected.has(name)) continue;
    yield* cancelStepAttempts(run.id, name, now);
    yield* exec(resetStepStmt, [run.id, name]);
    yield* clearStepItems(run.id, name);
  }
  if (run.status !== 'running' && run.status !== 'queued') {
    assertRunTransition(run.id, run.status, 'running');
    yield* setRunStatus(tx, events, run, 'running', now, { event: 'run.resumed', data: { action: 'rollback', to: step } });
  }
  tx.emit(events, run, 'checkpoint.created', step, now, { rollback_to: step, steps: affected });
  yield* rebuild(tx, events, run.id, now);
  tx.wake();
}

/** The reaper expired an attempt's lease: its step is queued again with a new attempt. */
export function* requeueExpired(tx: LedgerTx, runId: string, step: string, now: number, events: RunEvent[]): Rule<void> {
  const run = (yield* getRun(runId))!;
  const row = yield* get<Requeued>(S.requeueStep, [runId, step]);
  if (!row) return;
  const priority = (yield* pipelineOf(tx, run)).byName.get(step)?.priority ?? 0;
  yield* insertAttempt(tx, run, step, { number: row.attempts, at: now, availableAt: now, priority, force: row.force === 1, feedback: row.feedback });
  tx.emit(events, run, 'step.queued', step, now, { attempt: row.attempts, reason: 'lease expired' });
  tx.wake();
}
