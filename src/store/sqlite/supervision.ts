import type Database from 'better-sqlite3';
import { SluiceError, type ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import { stepStatesInto } from '../../core/state-machine.js';
import type { AttemptResult, GateDecision, GateDecisionRecord, HumanDecision, RunEvent } from '../store.js';
import { parseJson, toGateDecisionRecord, toJson, type DecisionRow, type RunRow, type StepRow } from '../rows.js';
import { approvedOutput, humanVerdict } from '../human-decision.js';
import type { RunTransitions } from './run-transitions.js';

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/** SQL of supervised steps (gates, approvals); each statement lists its parameters. */
const SQL = {
  // @run_id @name @status @output @now
  holdStep: `UPDATE steps SET status = @status, output = @output, finished_at = NULL
             WHERE run_id = @run_id AND name = @name AND status = 'running'`,
  // @run_id @name
  step: `SELECT * FROM steps WHERE run_id = @run_id AND name = @name`,
  // @run_id
  blockedCount: `SELECT COUNT(*) AS n FROM steps WHERE run_id = @run_id AND status = 'blocked'`,
  // @run_id @name @output @now
  approveStep: `UPDATE steps SET status = 'succeeded', output = @output, finished_at = @now
                WHERE run_id = @run_id AND name = @name AND status = 'blocked'`,
  // @run_id @name @error @now
  rejectStep: `UPDATE steps SET status = 'failed', error = @error, finished_at = @now
               WHERE run_id = @run_id AND name = @name AND status = 'blocked'`,
  // @run_id @step
  clearItems: `DELETE FROM step_items WHERE run_id = @run_id AND step = @step`,
  // @run_id @name @feedback
  setFeedback: `UPDATE steps SET feedback = @feedback WHERE run_id = @run_id AND name = @name`,
  // @run_id @name
  resetStep: `UPDATE steps SET status = 'pending', output = NULL, error = NULL, cache_key = NULL, cache_explain = NULL, finished_at = NULL,
                started_at = NULL, failures = 0, force = 1
              WHERE run_id = @run_id AND name = @name AND status IN (${inList(stepStatesInto('pending'))})`,
  // @run_id @step @now
  cancelAttempts: `UPDATE attempts SET status = 'cancelled', finished_at = @now, lease_expires_at = NULL
                   WHERE run_id = @run_id AND step = @step AND status IN ('queued', 'held', 'running')`,
  // @run_id @step
  retriesSoFar: `SELECT COUNT(*) AS n FROM gate_decisions WHERE run_id = @run_id AND step = @step AND decision = 'retry' AND kind = 'gate'`,
  // all columns but id
  insertDecision: `INSERT INTO gate_decisions (run_id, step, attempt, decision, validations, rules, retry_step, reason, budget_left, at)
                   VALUES (@run_id, @step, @attempt, @decision, @validations, @rules, @retry_step, @reason, @budget_left, @at)`,
  // @run_id @step @attempt @decision @comment @by @at: a person's decision on a blocked step
  insertHumanDecision: `INSERT INTO gate_decisions (run_id, step, attempt, kind, decision, validations, rules, comment, decided_by, at)
                        VALUES (@run_id, @step, @attempt, 'human', @decision, '[]', '[]', @comment, @by, @at)`,
  // @run_id
  decisions: `SELECT * FROM gate_decisions WHERE run_id = @run_id ORDER BY id`,
} as const;


/**
 * Supervised steps inside SQLite transactions: a step that blocks the run for a human, a human's
 * approval or rejection, and a gate that sends the run back to an upstream step with feedback.
 */
export class Supervision {
  private readonly stmts = new Map<keyof typeof SQL, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly transitions: RunTransitions,
  ) {}

  private stmt(key: keyof typeof SQL): Database.Statement {
    let s = this.stmts.get(key);
    if (!s) {
      s = this.db.prepare(SQL[key]);
      this.stmts.set(key, s);
    }
    return s;
  }

  /** The attempt ended `blocked`: the step waits for a human and the run is `waiting`. */
  block(run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): void {
    if (r.decision) this.recordDecision(run, step, attempt, r.decision, null, now, events);
    this.stmt('holdStep').run({ run_id: run.id, name: step, status: 'blocked', output: toJson(r.output) });
    this.transitions.emit(events, run, 'step.blocked', step, now, { attempt, ...(r.decision?.reason ? { reason: r.decision.reason } : {}) });
    const counters = this.transitions.addCounters(run.id, { active: -1 });
    if (run.status === 'running' || run.status === 'queued') this.transitions.setRunStatus(events, run, 'waiting', now);
    this.transitions.promote(events, { ...counters, status: 'waiting' }, now);
  }

  /**
   * The attempt ended `rewound`: a gate asks for an upstream step to run again. Within the budget, that
   * step and everything after it (the gate included) go back to pending, the step gets the feedback;
   * past the budget, the gate's `then` applies (block, or fail).
   */
  rewind(run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): 'rewound' | 'block' | 'fail' {
    const request = r.rewind!;
    const used = (this.stmt('retriesSoFar').get({ run_id: run.id, step }) as { n: number }).n;
    if (used >= request.budget) return request.then;
    const decision: GateDecision = r.decision ?? { decision: 'retry', validations: [], rules: [] };
    this.recordDecision(run, step, attempt, { ...decision, decision: 'retry', retryStep: request.to }, request.budget - used - 1, now, events);
    const compiled = this.transitions.pipelineOf(run);
    if (!compiled.byName.has(request.to)) throw new SluiceError('STEP_NOT_FOUND', `gate ${step} asked to retry ${request.to}, which is not a step of ${run.pipeline}`);
    const affected = descendants(compiled.definition, request.to);
    affected.add(step);
    for (const name of affected) {
      this.stmt('cancelAttempts').run({ run_id: run.id, step: name, now });
      this.stmt('resetStep').run({ run_id: run.id, name });
      this.stmt('clearItems').run({ run_id: run.id, step: name });
    }
    this.stmt('setFeedback').run({ run_id: run.id, name: request.to, feedback: toJson(request.feedback) });
    this.transitions.emit(events, run, 'checkpoint.created', request.to, now, { rollback_to: request.to, by: step, steps: [...affected] });
    this.transitions.rebuild(events, run.id, now);
    return 'rewound';
  }

  /** Stores a gate decision in the audit table and emits `gate.decided`. */
  recordDecision(run: RunRow, step: string, attempt: number, d: GateDecision, budgetLeft: number | null, now: number, events: RunEvent[]): void {
    this.stmt('insertDecision').run({
      run_id: run.id,
      step,
      attempt,
      decision: d.decision,
      validations: JSON.stringify(d.validations),
      rules: JSON.stringify(d.rules),
      retry_step: d.retryStep ?? null,
      reason: d.reason ?? null,
      budget_left: budgetLeft,
      at: now,
    });
    const data: Record<string, unknown> = { decision: d.decision, attempt };
    if (d.retryStep) data['retry'] = d.retryStep;
    if (budgetLeft !== null) data['budget_left'] = budgetLeft;
    if (d.reason) data['reason'] = d.reason;
    this.transitions.emit(events, run, 'gate.decided', step, now, data);
  }

  /** A human approves or rejects a blocked step. */
  decide(run: RunRow, step: string, d: HumanDecision, now: number, events: RunEvent[]): void {
    const row = this.stmt('step').get({ run_id: run.id, name: step }) as StepRow | undefined;
    if (!row) throw new SluiceError('STEP_NOT_FOUND', `run ${run.id} has no step ${step}`);
    if (row.status !== 'blocked') throw new SluiceError('ILLEGAL_TRANSITION', `step ${step} of run ${run.id} is ${row.status}; only a blocked step can be approved or rejected`);
    const who = { decision: d.decision, ...(d.comment ? { comment: d.comment } : {}), ...(d.by ? { by: d.by } : {}) };
    this.stmt('insertHumanDecision').run({ run_id: run.id, step, attempt: row.attempts, decision: d.decision, comment: d.comment ?? null, by: d.by ?? null, at: now });
    if (d.decision === 'approve') {
      const output = approvedOutput(parseJson<unknown>(row.output), humanVerdict(d, now));
      this.stmt('approveStep').run({ run_id: run.id, name: step, output: toJson(output), now });
      this.transitions.emit(events, run, 'step.succeeded', step, now, who);
    } else {
      const error: ErrorRecord = { code: 'REJECTED', message: d.comment ? `rejected: ${d.comment}` : 'rejected', retryable: false };
      this.stmt('rejectStep').run({ run_id: run.id, name: step, error: JSON.stringify(error), now });
      this.transitions.emit(events, run, 'step.failed', step, now, { ...who, error: { code: error.code, message: error.message } });
    }
    const stillBlocked = (this.stmt('blockedCount').get({ run_id: run.id }) as { n: number }).n;
    if (run.status === 'waiting' && stillBlocked === 0) this.transitions.setRunStatus(events, run, 'running', now, { event: 'run.resumed', data: who });
    const current = this.transitions.getRun(run.id)!;
    const continues = d.decision === 'approve' || this.transitions.pipelineOf(run).byName.get(step)?.onFailure === 'continue';
    if (continues) this.transitions.settle(events, current, step, now, false);
    else this.transitions.abort(events, current, step, now, false);
  }

  listDecisions(runId: string): GateDecisionRecord[] {
    return (this.stmt('decisions').all({ run_id: runId }) as DecisionRow[]).map(toGateDecisionRecord);
  }
}
