import { SluiceError, type ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import { stepStatesInto } from '../../core/state-machine.js';
import { parseJson, toGateDecisionRecord, type DecisionRow, type RunRow, type StepRow } from '../rows.js';
import type { AttemptResult, GateDecision, GateDecisionRecord, HumanDecision, RunEvent } from '../store.js';
import type pg from 'pg';
import { approvedOutput, humanVerdict } from '../human-decision.js';
import type { PgRunTransitions } from './pg-run-transitions.js';
import { pgJson, toPgText } from './pg-json.js';

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/** SQL of supervised steps (gates, approvals) on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // $1 run_id $2 name $3 status $4 output
  holdStep: `UPDATE steps SET status = $3, output = $4, finished_at = NULL WHERE run_id = $1 AND name = $2 AND status = 'running'`,
  // $1 run_id $2 name
  step: `SELECT * FROM steps WHERE run_id = $1 AND name = $2`,
  // $1 run_id
  blockedCount: `SELECT count(*) AS n FROM steps WHERE run_id = $1 AND status = 'blocked'`,
  // $1 run_id $2 name $3 output $4 now
  approveStep: `UPDATE steps SET status = 'succeeded', output = $3, finished_at = $4 WHERE run_id = $1 AND name = $2 AND status = 'blocked'`,
  // $1 run_id $2 name $3 error $4 now
  rejectStep: `UPDATE steps SET status = 'failed', error = $3, finished_at = $4 WHERE run_id = $1 AND name = $2 AND status = 'blocked'`,
  // $1 run_id $2 name $3 feedback
  setFeedback: `UPDATE steps SET feedback = $3 WHERE run_id = $1 AND name = $2`,
  // $1 run_id $2 name
  resetStep: `UPDATE steps SET status = 'pending', output = NULL, error = NULL, cache_key = NULL, cache_explain = NULL, finished_at = NULL,
                started_at = NULL, failures = 0, force = 1
              WHERE run_id = $1 AND name = $2 AND status IN (${inList(stepStatesInto('pending'))})`,
  // $1 run_id $2 step $3 now
  cancelAttempts: `UPDATE attempts SET status = 'cancelled', finished_at = $3, lease_expires_at = NULL
                   WHERE run_id = $1 AND step = $2 AND status IN ('queued', 'held', 'running')`,
  // $1 run_id $2 step
  retriesSoFar: `SELECT count(*) AS n FROM gate_decisions WHERE run_id = $1 AND step = $2 AND decision = 'retry' AND kind = 'gate'`,
  // $1 run_id $2 step $3 attempt $4 decision $5 validations $6 rules $7 retry_step $8 reason $9 budget_left $10 at
  insertDecision: `INSERT INTO gate_decisions (run_id, step, attempt, decision, validations, rules, retry_step, reason, budget_left, at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
  // $1 run_id $2 step $3 attempt $4 decision $5 comment $6 decided_by $7 at: a person's decision on a blocked step
  insertHumanDecision: `INSERT INTO gate_decisions (run_id, step, attempt, kind, decision, validations, rules, comment, decided_by, at)
                        VALUES ($1, $2, $3, 'human', $4, '[]', '[]', $5, $6, $7)`,
  // $1 run_id
  decisions: `SELECT * FROM gate_decisions WHERE run_id = $1 ORDER BY id`,
} as const;


/**
 * Supervised steps inside one PostgreSQL transaction (ported from the SQLite backend's Supervision): a step
 * that blocks the run for a human, a human's approval or rejection, and a gate that sends the run back to an
 * upstream step with feedback. The caller holds the run's row lock.
 */
export class PgSupervision {
  constructor(
    private readonly client: pg.ClientBase,
    private readonly transitions: PgRunTransitions,
  ) {}

  private async q<R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[]): Promise<R[]> {
    return (await this.client.query<R>({ name: `v_${key}`, text: SQL[key], values })).rows;
  }

  /** The attempt ended `blocked`: the step waits for a human and the run is `waiting`. */
  async block(run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): Promise<void> {
    const t = this.transitions;
    if (r.decision) await this.recordDecision(run, step, attempt, r.decision, null, now, events);
    await this.q('holdStep', [run.id, step, 'blocked', pgJson(r.output)]);
    t.emit(events, run, 'step.blocked', step, now, { attempt, ...(r.decision?.reason ? { reason: r.decision.reason } : {}) });
    const counters = await t.addCounters(run.id, { active: -1 });
    if (run.status === 'running' || run.status === 'queued') await t.setRunStatus(events, run, 'waiting', now);
    await t.promote(events, { ...counters, status: 'waiting' }, now);
  }

  /**
   * The attempt ended `rewound`: a gate asks for an upstream step to run again. Within the budget, that step and
   * everything after it (the gate included) go back to pending, the step gets the feedback; past the budget,
   * the gate's `then` applies (block, or fail).
   */
  async rewind(run: RunRow, step: string, attempt: number, r: AttemptResult, now: number, events: RunEvent[]): Promise<'rewound' | 'block' | 'fail'> {
    const t = this.transitions;
    const request = r.rewind!;
    const used = Number((await this.q<{ n: number }>('retriesSoFar', [run.id, step]))[0]!.n);
    if (used >= request.budget) return request.then;
    const decision: GateDecision = r.decision ?? { decision: 'retry', validations: [], rules: [] };
    await this.recordDecision(run, step, attempt, { ...decision, decision: 'retry', retryStep: request.to }, request.budget - used - 1, now, events);
    const compiled = await t.pipelineOf(run);
    if (!compiled.byName.has(request.to)) throw new SluiceError('STEP_NOT_FOUND', `gate ${step} asked to retry ${request.to}, which is not a step of ${run.pipeline}`);
    const affected = descendants(compiled.definition, request.to);
    affected.add(step);
    for (const name of affected) {
      await this.q('cancelAttempts', [run.id, name, now]);
      await this.q('resetStep', [run.id, name]);
    }
    await this.q('setFeedback', [run.id, request.to, pgJson(request.feedback)]);
    t.emit(events, run, 'checkpoint.created', request.to, now, { rollback_to: request.to, by: step, steps: [...affected] });
    await t.rebuild(events, run.id, now);
    return 'rewound';
  }

  /** Stores a gate decision in the audit table and emits `gate.decided`. */
  async recordDecision(run: Pick<RunRow, 'id' | 'pipeline'>, step: string, attempt: number, d: GateDecision, budgetLeft: number | null, now: number, events: RunEvent[]): Promise<void> {
    await this.q('insertDecision', [run.id, step, attempt, d.decision, pgJson(d.validations), pgJson(d.rules), d.retryStep ?? null, toPgText(d.reason ?? null), budgetLeft, now]);
    const data: Record<string, unknown> = { decision: d.decision, attempt };
    if (d.retryStep) data['retry'] = d.retryStep;
    if (budgetLeft !== null) data['budget_left'] = budgetLeft;
    if (d.reason) data['reason'] = d.reason;
    this.transitions.emit(events, run, 'gate.decided', step, now, data);
  }

  /** A human approves or rejects a blocked step. */
  async decide(run: RunRow, step: string, d: HumanDecision, now: number, events: RunEvent[]): Promise<void> {
    const t = this.transitions;
    const [row] = await this.q<StepRow>('step', [run.id, step]);
    if (!row) throw new SluiceError('STEP_NOT_FOUND', `run ${run.id} has no step ${step}`);
    if (row.status !== 'blocked') throw new SluiceError('ILLEGAL_TRANSITION', `step ${step} of run ${run.id} is ${row.status}; only a blocked step can be approved or rejected`);
    const who = { decision: d.decision, ...(d.comment ? { comment: d.comment } : {}), ...(d.by ? { by: d.by } : {}) };
    await this.q('insertHumanDecision', [run.id, step, row.attempts, d.decision, d.comment ?? null, d.by ?? null, now]);
    if (d.decision === 'approve') {
      const output = approvedOutput(parseJson<unknown>(row.output), humanVerdict(d, now));
      await this.q('approveStep', [run.id, step, pgJson(output), now]);
      t.emit(events, run, 'step.succeeded', step, now, who);
    } else {
      const error: ErrorRecord = { code: 'REJECTED', message: d.comment ? `rejected: ${d.comment}` : 'rejected', retryable: false };
      await this.q('rejectStep', [run.id, step, pgJson(error), now]);
      t.emit(events, run, 'step.failed', step, now, { ...who, error: { code: error.code, message: error.message } });
    }
    const stillBlocked = Number((await this.q<{ n: number }>('blockedCount', [run.id]))[0]!.n);
    if (run.status === 'waiting' && stillBlocked === 0) await t.setRunStatus(events, run, 'running', now, { event: 'run.resumed', data: who });
    const current = (await t.getRun(run.id))!;
    const continues = d.decision === 'approve' || (await t.pipelineOf(run)).byName.get(step)?.onFailure === 'continue';
    if (continues) await t.settle(events, current, step, now, false);
    else await t.abort(events, current, step, now, false);
  }

  async listDecisions(runId: string): Promise<GateDecisionRecord[]> {
    return (await this.q<DecisionRow>('decisions', [runId])).map(toGateDecisionRecord);
  }
}
