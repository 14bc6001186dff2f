/**
 * Supervised steps, written once for both backends: a step that blocks the run for a human, a human's approval
 * or rejection, and a gate that sends the run back to an upstream step with feedback. The caller's transaction
 * holds the run.
 */
import { SluiceError } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import { stepStatesInto } from '../../core/state-machine.js';
import { afterRewindRequest, type RewindVerdict } from '../../core/step-policy.js';
import { approvedOutput, humanVerdict } from '../human-decision.js';
import { parseJson, toGateDecisionRecord, type DecisionRow, type RunRow } from '../rows.js';
import type { AttemptResult, GateDecision, GateDecisionRecord, HumanDecision, RunEvent } from '../store.js';
import { all, get, run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx, StoredError } from './ledger-tx.js';
import { addCounters, clearStepItems, failedForGoodStep, getRun, getStep, inList, pipelineOf, promote, rebuild, setRunStatus, settle } from './transitions.js';
import { cancelStepAttempts } from './attempt-rows.js';

const S = {
  holdStep: sql('holdStep', `UPDATE steps SET status = $3, output = $4::jsonb, finished_at = NULL WHERE run_id = $1 AND name = $2 AND status = 'running'`),
  blockedCount: sql('blockedCount', `SELECT COUNT(*) AS n FROM steps WHERE run_id = $1 AND status = 'blocked'`),
  approveStep: sql('approveStep', `UPDATE steps SET status = 'succeeded', output = $3::jsonb, finished_at = $4 WHERE run_id = $1 AND name = $2 AND status = 'blocked'`),
  rejectStep: sql('rejectStep', `UPDATE steps SET status = 'failed', error = $3::jsonb, finished_at = $4 WHERE run_id = $1 AND name = $2 AND status = 'blocked'`),
  setFeedback: sql('setFeedback', `UPDATE steps SET feedback = $3::jsonb WHERE run_id = $1 AND name = $2`),
  resetStep: sql(
    'resetStep',
    `UPDATE steps SET status = 'pending', output = NULL, error = NULL, cache_key = NULL, cache_explain = NULL, finished_at = NULL,
       started_at = NULL, failures = 0, force = 1
     WHERE run_id = $1 AND name = $2 AND status IN (${inList(stepStatesInto('pending'))})`,
  ),
  retriesSoFar: sql('retriesSoFar', `SELECT COUNT(*) AS n FROM gate_decisions WHERE run_id = $1 AND step = $2 AND decision = 'retry' AND kind = 'gate'`),
  insertDecision: sql(
    'insertDecision',
    `INSERT INTO gate_decisions (run_id, step, attempt, decision, validations, rules, retry_step, reason, budget_left, at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10)`,
  ),
  // A person's decision on a blocked step.
  insertHumanDecision: sql(
    'insertHumanDecision',
    `INSERT INTO gate_decisions (run_id, step, attempt, kind, decision, validations, rules, comment, decided_by, at)
     VALUES ($1, $2, $3, 'human', $4, '[]', '[]', $5, $6, $7)`,
  ),
  decisions: sql('decisions', `SELECT * FROM gate_decisions WHERE run_id = $1 ORDER BY id`),
};

/** Puts a step back to pending, to run again (a rewind or a rollback). */
export const resetStepStmt = S.resetStep;

/** The attempt ended `blocked`: the step waits for a human and the run is `waiting`. */
export function* block(tx: LedgerTx, run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): Rule<void> {
  if (r.decision) yield* recordDecision(tx, run, step, attempt, r.decision, null, now, events);
  yield* exec(S.holdStep, [run.id, step, 'blocked', tx.json(r.output)]);
  tx.emit(events, run, 'step.blocked', step, now, { attempt, ...(r.decision?.reason ? { reason: r.decision.reason } : {}) });
  const counters = yield* addCounters(run.id, { active: -1 });
  // A paused run stays paused (and starts nothing in the freed slot) until it is resumed.
  const live = run.status === 'running' || run.status === 'queued';
  if (live) yield* setRunStatus(tx, events, run, 'waiting', now);
  yield* promote(tx, events, { ...counters, status: live ? 'waiting' : run.status }, now);
}

/**
 * The attempt ended `rewound`: a gate asks for an upstream step to run again. Within the budget, that step and
 * everything after it (the gate included) go back to pending, the step gets the feedback; past the budget, the
 * gate's `then` applies (block, or fail).
 */
export function* rewind(tx: LedgerTx, run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): Rule<RewindVerdict> {
  const request = r.rewind!;
  const used = Number((yield* get<{ n: number }>(S.retriesSoFar, [run.id, step]))!.n);
  const verdict = afterRewindRequest(step, request, used);
  if (verdict.kind !== 'rewind') return verdict;
  const decision: GateDecision = r.decision ?? { decision: 'retry', validations: [], rules: [] };
  yield* recordDecision(tx, run, step, attempt, { ...decision, decision: 'retry', retryStep: request.to }, verdict.budgetLeft, now, events);
  const compiled = yield* pipelineOf(tx, run);
  if (!compiled.byName.has(request.to)) throw new SluiceError('STEP_NOT_FOUND', `gate ${step} asked to retry ${request.to}, which is not a step of ${run.pipeline}`);
  const affected = descendants(compiled.definition, request.to);
  affected.add(step);
  for (const name of affected) {
    yield* cancelStepAttempts(run.id, name, now);
    yield* exec(S.resetStep, [run.id, name]);
    yield* clearStepItems(run.id, name);
  }
  yield* exec(S.setFeedback, [run.id, request.to, tx.json(request.feedback)]);
  tx.emit(events, run, 'checkpoint.created', request.to, now, { rollback_to: request.to, by: step, steps: [...affected] });
  yield* rebuild(tx, events, run.id, now);
  return verdict;
}

/** Stores a gate decision in the audit table and emits `gate.decided`. */
export function* recordDecision(
  tx: LedgerTx,
  run: Pick<RunRow, 'id' | 'pipeline'>,
  step: string,
  attempt: number,
  d: GateDecision,
  budgetLeft: number | null,
  now: number,
  events: RunEvent[],
): Rule<void> {
  yield* exec(S.insertDecision, [run.id, step, attempt, d.decision, tx.json(d.validations), tx.json(d.rules), d.retryStep ?? null, tx.text(d.reason ?? null), budgetLeft, now]);
  const data: Record<string, unknown> = { decision: d.decision, attempt };
  if (d.retryStep) data['retry'] = d.retryStep;
  if (budgetLeft !== null) data['budget_left'] = budgetLeft;
  if (d.reason) data['reason'] = d.reason;
  tx.emit(events, run, 'gate.decided', step, now, data);
}

/** A human approves or rejects a blocked step. */
export function* decide(tx: LedgerTx, run: RunRow, step: string, d: HumanDecision, now: number, events: RunEvent[]): Rule<void> {
  const row = yield* getStep(run.id, step);
  if (!row) throw new SluiceError('STEP_NOT_FOUND', `run ${run.id} has no step ${step}`);
  if (row.status !== 'blocked') throw new SluiceError('ILLEGAL_TRANSITION', `step ${step} of run ${run.id} is ${row.status}; only a blocked step can be approved or rejected`);
  const who = { decision: d.decision, ...(d.comment ? { comment: d.comment } : {}), ...(d.by ? { by: d.by } : {}) };
  yield* exec(S.insertHumanDecision, [run.id, step, row.attempts, d.decision, tx.text(d.comment ?? null), tx.text(d.by ?? null), now]);
  if (d.decision === 'approve') {
    const output = approvedOutput(parseJson<unknown>(row.output), humanVerdict(d, now));
    yield* exec(S.approveStep, [run.id, step, tx.json(output), now]);
    tx.emit(events, run, 'step.succeeded', step, now, who);
  } else {
    const error: StoredError = { code: 'REJECTED', message: d.comment ? `rejected: ${d.comment}` : 'rejected', retryable: false };
    yield* exec(S.rejectStep, [run.id, step, tx.json(error), now]);
    tx.emit(events, run, 'step.failed', step, now, { ...who, error: { code: error.code, message: error.message } });
  }
  const stillBlocked = Number((yield* get<{ n: number }>(S.blockedCount, [run.id]))!.n);
  if (run.status === 'waiting' && stillBlocked === 0) yield* setRunStatus(tx, events, run, 'running', now, { event: 'run.resumed', data: who });
  const current = (yield* getRun(run.id))!;
  if (d.decision === 'approve') yield* settle(tx, events, current, step, now, false);
  else yield* failedForGoodStep(tx, events, current, step, now, false);
}

/** The audit of a run's gate and human decisions, oldest first. */
export function* listDecisions(runId: string): Rule<GateDecisionRecord[]> {
  return (yield* all<DecisionRow>(S.decisions, [runId])).map(toGateDecisionRecord);
}
