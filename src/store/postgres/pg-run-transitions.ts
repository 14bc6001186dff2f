import type pg from 'pg';
import type { ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import type { RunStatus, StepStatus } from '../../core/model.js';
import { needIsSettled } from '../../core/scheduler.js';
import { runStatesInto, stepStatesInto } from '../../core/state-machine.js';
import type { CompiledPipeline } from '../ledger/ledger-tx.js';
import type { RunRow, StepRow } from '../rows.js';
import { stepsFailedError, type FailedStepRow } from '../run-failure.js';
import type { EventType, RunEvent } from '../store.js';
import { encodePgJson, pgJson } from './pg-json.js';

const STEPS_FAILED: ErrorRecord = { code: 'STEP_FAILED', message: 'one or more steps failed' };

/** A run in these states ends when its last step settles (a paused run ends on resume). */
const ENDABLE = ['queued', 'running'].filter((s) => runStatesInto('succeeded').includes(s as RunStatus) && runStatesInto('failed').includes(s as RunStatus));

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/** Condition, over the row before the update, that the settle update ends the run ($2 = active delta, $3 = remaining delta). */
const FINISHING = `remaining + $3 = 0 AND active + $2 = 0 AND status IN (${inList(ENDABLE)})`;

/** The columns of a run that scheduling reads back after changing its counters (not its input or error). */
const RUN_STATE = 'id, pipeline, version, status, priority, force, max_parallel, remaining, active, failed, run_at, parent_run_id';

/** A run as {@link RUN_STATE} returns it. */
export type RunState = Pick<RunRow, 'id' | 'pipeline' | 'version' | 'status' | 'priority' | 'force' | 'max_parallel' | 'remaining' | 'active' | 'failed' | 'run_at' | 'parent_run_id'>;

/** Frees a step's slot and counts it done in the runs matching `where`; ends a run whose last step this was. */
const settleCountersWhere = (where: string) => `UPDATE runs SET active = active + $2, remaining = remaining + $3,
      status = CASE WHEN ${FINISHING} THEN (CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END) ELSE status END,
      error = CASE WHEN ${FINISHING} AND failed > 0 THEN '${JSON.stringify(STEPS_FAILED)}'::jsonb ELSE error END,
      finished_at = CASE WHEN ${FINISHING} THEN $4::bigint ELSE finished_at END
    WHERE ${where}
    RETURNING ${RUN_STATE}, (remaining = 0 AND active = 0 AND finished_at = $4::bigint AND status IN ('succeeded', 'failed')) AS finished`;

/** SQL used inside transactions of the PostgreSQL backend; each statement lists its parameters. */
export const TRANSITION_SQL = {
  // $1 id
  run: `SELECT * FROM runs WHERE id = $1`,
  // $1 id
  lockRun: `SELECT * FROM runs WHERE id = $1 FOR UPDATE`,
  // $1 ids (text[]): locks the runs in id order, so concurrent transactions never wait on each other in a cycle
  lockRuns: `SELECT id FROM runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
  // $1 id $2 active $3 remaining $4 failed
  addCounters: `UPDATE runs SET active = active + $2, remaining = remaining + $3, failed = failed + $4 WHERE id = $1 RETURNING *`,
  // $1 id $2 error $3 at ; only from states that may enter the target
  setRunStatus: (to: RunStatus) =>
    `UPDATE runs SET status = '${to}', error = COALESCE($2::jsonb, error),
       finished_at = CASE WHEN '${to}' IN ('succeeded','failed','cancelled') THEN $3::bigint ELSE NULL END
     WHERE id = $1 AND status IN (${inList(runStatesInto(to))})`,
  // $1 id $2 active $3 remaining $4 at: settles one step and, when nothing is left, ends the run in the same write.
  settleCounters: settleCountersWhere('id = $1'),
  // $1 ids (text[]: each run at most once) $2 active $3 remaining $4 at: the same for many runs in one statement
  settleMany: settleCountersWhere('id = ANY($1::text[])'),
  // $1 run_ids $2 names (one element per dependent; each (run, name) at most once)
  decrementWaitingMany: `UPDATE steps SET waiting_on = waiting_on - 1 FROM unnest($1::text[], $2::text[]) AS u(run_id, name)
                         WHERE steps.run_id = u.run_id AND steps.name = u.name AND steps.status = 'pending'`,
  // $1 run_id $2 names (text[])
  decrementWaiting: `UPDATE steps SET waiting_on = waiting_on - 1 WHERE run_id = $1 AND name = ANY($2::text[]) AND status = 'pending'`,
  // $1 run_id $2 limit
  readySteps: `SELECT name FROM steps WHERE run_id = $1 AND status = 'pending' AND waiting_on = 0 ORDER BY priority DESC, seq LIMIT $2`,
  // $1 run_id $2 name
  queueStep: `UPDATE steps SET status = 'queued', attempts = attempts + 1
              WHERE run_id = $1 AND name = $2 AND status IN (${inList(stepStatesInto('queued'))}) RETURNING attempts, force, feedback`,
  // $1 run_id $2 step $3 number $4 status $5 priority $6 force $7 available_at $8 queued_at $9 feedback
  insertAttempt: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
  // the same, plus $10 template $11 limit: an attempt of a step with a concurrency_key takes the key its run rendered
  // (the key's text when the run has none)
  insertKeyedAttempt: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback,
                    concurrency_key, concurrency_limit)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE((SELECT concurrency_keys ->> $2 FROM runs WHERE id = $1), $10), $11)`,
  // $1 run_id
  unstartedSteps: `SELECT name, status FROM steps WHERE run_id = $1 AND status IN ('pending', 'queued', 'retrying') ORDER BY seq`,
  // $1 run_id
  liveSteps: `SELECT name, status FROM steps WHERE run_id = $1 AND status IN ('pending', 'queued', 'retrying', 'running', 'blocked') ORDER BY seq`,
  // $1 run_id $2 name $3 at
  cancelStep: `UPDATE steps SET status = 'cancelled', finished_at = $3
               WHERE run_id = $1 AND name = $2 AND status IN (${inList(stepStatesInto('cancelled'))})`,
  // $1 run_id $2 step $3 at
  cancelAttempts: `UPDATE attempts SET status = 'cancelled', finished_at = $3, lease_expires_at = NULL
                   WHERE run_id = $1 AND step = $2 AND status IN ('queued', 'held', 'running')`,
  // $1 run_id: live child runs (of `pipeline` steps), locked
  liveChildren: `SELECT * FROM runs WHERE parent_run_id = $1 AND status IN ('queued', 'running', 'paused', 'waiting') ORDER BY id FOR UPDATE`,
  // $1 run_id
  allSteps: `SELECT * FROM steps WHERE run_id = $1 ORDER BY seq`,
  // $1 run_id $2 name $3 waiting_on
  setWaiting: `UPDATE steps SET waiting_on = $3 WHERE run_id = $1 AND name = $2`,
  // $1 run_id: the steps that failed, in the order they failed
  failedSteps: `SELECT name, error FROM steps WHERE run_id = $1 AND status = 'failed' ORDER BY finished_at, seq`,
  // $1 id $2 error (jsonb text)
  setRunError: `UPDATE runs SET error = $2::jsonb WHERE id = $1`,
  // $1 id $2 active $3 remaining $4 failed
  setCounters: `UPDATE runs SET active = $2, remaining = $3, failed = $4 WHERE id = $1 RETURNING *`,
  // $1 run_ids $2 pipelines $3 steps $4 types $5 data (jsonb text) $6 ats: rows in array order
  insertEvents: `INSERT INTO events (run_id, pipeline, step, type, data, at)
                 SELECT r, p, s, t, d::jsonb, a
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY AS u(r, p, s, t, d, a, n)
                 ORDER BY n
                 RETURNING id`,
} as const;

type SqlKey = Exclude<keyof typeof TRANSITION_SQL, 'setRunStatus'>;

/** The columns of insertEvents (run_ids, pipelines, steps, types, data as JSON text, ats) for `events`, in order. */
export function eventColumns(events: readonly RunEvent[]): unknown[][] {
  const cols: unknown[][] = [[], [], [], [], [], []];
  for (const e of events) {
    cols[0]!.push(e.runId);
    cols[1]!.push(e.pipeline);
    cols[2]!.push(e.step);
    cols[3]!.push(e.type);
    cols[4]!.push(e.data === null ? null : pgJson(e.data));
    cols[5]!.push(e.at);
  }
  return cols;
}

/**
 * The scheduling rules of one run (ported from the SQLite backend's RunTransitions), applied inside one
 * PostgreSQL transaction: settling a step, queueing what became ready, failing fast, cancelling and finishing.
 * One instance per transaction: it buffers that transaction's events until {@link flushEvents}.
 */
export class PgRunTransitions {
  private readonly unwritten: RunEvent[] = [];
  /**
   * Called when a child run (one with a parent) reaches a terminal state: the store completes the parent's
   * `pipeline` step. Runs without a parent are skipped, which saves a read per ended run.
   */
  onRunEnded: ((out: RunEvent[], runId: string, status: 'succeeded' | 'failed' | 'cancelled', at: number) => Promise<void>) | null = null;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly compiled: (pipeline: string, version: number) => Promise<CompiledPipeline>,
  ) {}

  /** Runs a named (prepared once per connection) statement. */
  async query<R extends pg.QueryResultRow>(key: SqlKey, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.client.query<R>({ name: `t_${key}`, text: TRANSITION_SQL[key], values });
  }

  pipelineOf(run: Pick<RunRow, 'pipeline' | 'version'>): Promise<CompiledPipeline> {
    return this.compiled(run.pipeline, run.version);
  }

  async getRun(id: string): Promise<RunRow | undefined> {
    return (await this.query<RunRow>('run', [id])).rows[0];
  }

  /** Locks the run row until commit; every transaction that changes a run's counters takes this first. */
  async lockRun(id: string): Promise<RunRow | undefined> {
    return (await this.query<RunRow>('lockRun', [id])).rows[0];
  }

  /** Locks many run rows, in id order. */
  async lockRuns(ids: Iterable<string>): Promise<void> {
    const unique = [...new Set(ids)].sort();
    if (unique.length > 0) await this.query('lockRuns', [unique]);
  }

  /** Records an event: collected for the in-process bus and written by {@link flushEvents} before commit. */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void {
    const event: RunEvent = { id: 0, runId: run.id, pipeline: run.pipeline, step, type, data: data ?? null, at };
    out.push(event);
    this.unwritten.push(event);
  }

  /**
   * Writes the events emitted in this transaction in one INSERT and fills in their ids. Ids come from a
   * sequence in insertion order, so the sorted ids belong to the events in emission order.
   */
  async flushEvents(): Promise<void> {
    const events = this.takeEvents();
    if (events.length === 0) return;
    const ids = (await this.query<{ id: number }>('insertEvents', eventColumns(events))).rows.map((r) => r.id).sort((a, b) => a - b);
    events.forEach((e, i) => (e.id = ids[i]!));
  }

  /** The events emitted and not written yet, which the caller now writes (and whose ids it fills in). */
  takeEvents(): RunEvent[] {
    return this.unwritten.splice(0);
  }

  async addCounters(id: string, delta: { active?: number; remaining?: number; failed?: number }): Promise<RunRow> {
    return (await this.query<RunRow>('addCounters', [id, delta.active ?? 0, delta.remaining ?? 0, delta.failed ?? 0])).rows[0]!;
  }

  /** Moves the run to `to` if the transition table allows it; emits `run.<to>` (or the given event). */
  async setRunStatus(out: RunEvent[], run: RunRow, to: RunStatus, at: number, opts: { error?: ErrorRecord; event?: EventType; data?: Record<string, unknown> } = {}): Promise<boolean> {
    const text = TRANSITION_SQL.setRunStatus(to);
    const res = await this.client.query({ name: `t_setRunStatus_${to}`, text, values: [run.id, opts.error ? pgJson(opts.error) : null, at] });
    const changed = (res.rowCount ?? 0) > 0;
    if (changed) {
      const data = opts.data ?? (opts.error ? { error: opts.error } : undefined);
      this.emit(out, run, opts.event ?? (`run.${to}` as EventType), null, at, data);
    }
    return changed;
  }

  /** Inserts the next attempt of a step that is already marked queued/retrying. */
  async insertAttempt(run: RunState, step: string, number: number, at: number, availableAt: number, priority: number, force = false, feedback: string | null = null): Promise<void> {
    const status = run.status === 'paused' ? 'held' : 'queued';
    const forced = force || run.force === 1 ? 1 : 0;
    const values = [run.id, step, number, status, run.priority + priority, forced, availableAt, at, encodePgJson(feedback)];
    const def = (await this.pipelineOf(run)).byName.get(step);
    if (!def || def.concurrencyKey === null) await this.query('insertAttempt', values);
    else await this.query('insertKeyedAttempt', [...values, def.concurrencyKey, def.concurrencyLimit ?? 1]);
  }

  /** Queues ready steps up to the run's max_parallel; returns the run with its counters updated. */
  async promote<R extends RunState>(out: RunEvent[], run: R, at: number): Promise<R | RunRow> {
    // A waiting run (a step awaits a human) goes on with its independent branches.
    if (run.status !== 'running' && run.status !== 'queued' && run.status !== 'waiting') return run;
    const slots = run.max_parallel - run.active;
    // remaining counts every unfinished step; when all of them are active, none is pending.
    if (slots <= 0 || run.remaining <= run.active) return run;
    const compiled = await this.pipelineOf(run);
    if (run.failed > 0 && compiled.definition.failFast) return run;
    const ready = (await this.query<{ name: string }>('readySteps', [run.id, slots])).rows;
    if (ready.length === 0) return run;
    for (const { name } of ready) {
      const row = (await this.query<{ attempts: number; force: number; feedback: string | null }>('queueStep', [run.id, name])).rows[0];
      if (!row) continue;
      await this.insertAttempt(run, name, row.attempts, at, Math.max(at, run.run_at), compiled.byName.get(name)?.priority ?? 0, row.force === 1, row.feedback);
      this.emit(out, run, 'step.queued', name, at, { attempt: row.attempts });
    }
    return this.addCounters(run.id, { active: ready.length });
  }

  /**
   * A step reached a state that lets dependents proceed (succeeded, cached, skipped, or failed with
   * on_failure: continue): free its slot, count it done, release dependents, queue what is ready.
   */
  async settle(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline' | 'version'>, step: string, at: number, wasActive = true): Promise<void> {
    const compiled = await this.pipelineOf(run);
    const dependents = compiled.dependents.get(step) ?? [];
    if (dependents.length > 0) await this.query('decrementWaiting', [run.id, dependents]);
    const row = (await this.query<RunState & { finished: boolean }>('settleCounters', [run.id, wasActive ? -1 : 0, -1, at])).rows[0]!;
    if (row.finished) {
      await this.finished(out, row, at);
      return;
    }
    await this.promote(out, row, at);
  }

  /**
   * {@link settle} for many steps at once, each of a different run (the caller guarantees it): the waiting counts
   * and the run counters are updated in one statement each; then each run that goes on queues what is ready.
   */
  async settleMany(out: RunEvent[], settled: ReadonlyArray<{ run: Pick<RunRow, 'id' | 'pipeline' | 'version'>; step: string }>, at: number): Promise<void> {
    if (settled.length === 0) return;
    const depRuns: string[] = [];
    const depNames: string[] = [];
    for (const { run, step } of settled) {
      for (const d of (await this.pipelineOf(run)).dependents.get(step) ?? []) {
        depRuns.push(run.id);
        depNames.push(d);
      }
    }
    if (depRuns.length > 0) await this.query('decrementWaitingMany', [depRuns, depNames]);
    const rows = (await this.query<RunState & { finished: boolean }>('settleMany', [settled.map((s) => s.run.id), -1, -1, at])).rows;
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const { run } of settled) {
      const row = byId.get(run.id)!;
      if (row.finished) {
        await this.finished(out, row, at);
      } else {
        await this.promote(out, row, at);
      }
    }
  }

  /** A step failed for good with on_failure: abort. */
  async abort(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline' | 'version'>, step: string, at: number, wasActive = true): Promise<void> {
    const compiled = await this.pipelineOf(run);
    let row = await this.addCounters(run.id, { active: wasActive ? -1 : 0, remaining: -1, failed: 1 });
    if (compiled.definition.failFast) {
      row = await this.cancelSteps(out, row, null, at);
    } else {
      const downstream = descendants(compiled.definition, step);
      downstream.delete(step);
      row = await this.promote(out, await this.cancelSteps(out, row, downstream, at), at);
    }
    await this.finishIfDone(out, row, at);
  }

  /** Cancels steps that have not started (all of them, or those in `only`). */
  async cancelSteps(out: RunEvent[], run: RunRow, only: Set<string> | null, at: number, includeRunning = false): Promise<RunRow> {
    const rows = (await this.query<{ name: string; status: StepStatus }>(includeRunning ? 'liveSteps' : 'unstartedSteps', [run.id])).rows;
    let active = 0;
    let remaining = 0;
    for (const { name, status } of rows) {
      if (only && !only.has(name)) continue;
      if (((await this.query('cancelStep', [run.id, name, at])).rowCount ?? 0) === 0) continue;
      await this.query('cancelAttempts', [run.id, name, at]);
      remaining += 1;
      if (status !== 'pending' && status !== 'blocked') active += 1;
      this.emit(out, run, 'step.cancelled', name, at);
    }
    return remaining > 0 ? this.addCounters(run.id, { active: -active, remaining: -remaining }) : run;
  }

  /** Ends the run when no step is left: failed if any step failed with abort, succeeded otherwise. */
  async finishIfDone(out: RunEvent[], run: RunRow, at: number): Promise<void> {
    if (run.remaining > 0 || run.active > 0) return;
    if (run.status !== 'running' && run.status !== 'queued') return;
    const to = run.failed > 0 ? 'failed' : 'succeeded';
    if (await this.setRunStatus(out, run, to, at, run.failed > 0 ? { error: await this.failureOf(run) } : {})) await this.ended(out, run, to, at);
  }

  /** A settle update ended the run: a failed run's error names the step that failed it; emits `run.<status>`. */
  private async finished(out: RunEvent[], row: RunState, at: number): Promise<void> {
    let data: Record<string, unknown> | undefined;
    if (row.failed > 0) {
      // The settle statement stored a generic error; the run's error names the step that failed it.
      const error = await this.failureOf(row);
      await this.query('setRunError', [row.id, pgJson(error)]);
      data = { error };
    }
    this.emit(out, row, `run.${row.status}` as EventType, null, at, data);
    await this.ended(out, row, row.status as 'succeeded' | 'failed', at);
  }

  /** The error of a run that failed because steps failed: names the first one and its error. */
  async failureOf(run: Pick<RunRow, 'id' | 'pipeline' | 'version'>): Promise<ErrorRecord> {
    const failed = (await this.query<FailedStepRow>('failedSteps', [run.id])).rows;
    return stepsFailedError(failed, (await this.pipelineOf(run)).byName);
  }

  /** Ends a run now as cancelled or failed: every live step and attempt is cancelled. */
  async terminate(out: RunEvent[], run: RunRow, to: 'cancelled' | 'failed', at: number, error?: ErrorRecord): Promise<void> {
    await this.cancelSteps(out, run, null, at, true);
    if (!(await this.setRunStatus(out, run, to, at, error ? { error } : {}))) return;
    // Child runs of `pipeline` steps end with their parent.
    for (const child of (await this.query<RunRow>('liveChildren', [run.id])).rows) await this.terminate(out, child, 'cancelled', at);
    await this.ended(out, run, to, at);
  }

  /** Tells {@link onRunEnded} that `run` ended, unless it has no parent (a row without the column still tells). */
  private async ended(out: RunEvent[], run: Pick<RunRow, 'id' | 'parent_run_id'>, status: 'succeeded' | 'failed' | 'cancelled', at: number): Promise<void> {
    if (run.parent_run_id !== null) await this.onRunEnded?.(out, run.id, status, at);
  }

  /**
   * Recomputes waiting counts and run counters from the step rows, after steps were put back to pending by
   * retry or rollback; then queues what is ready.
   */
  async rebuild(out: RunEvent[], runId: string, at: number): Promise<void> {
    const run = (await this.getRun(runId))!;
    const { byName } = await this.pipelineOf(run);
    const rows = (await this.query<StepRow>('allSteps', [runId])).rows;
    const statusOf = new Map(rows.map((r) => [r.name, r.status]));
    let active = 0;
    let remaining = 0;
    let failed = 0;
    for (const row of rows) {
      const step = byName.get(row.name);
      if (row.status === 'pending' && step) {
        const waiting = step.needs.filter((n) => !needIsSettled(statusOf.get(n) ?? 'pending', byName.get(n))).length;
        await this.query('setWaiting', [runId, row.name, waiting]);
      }
      if (['queued', 'running', 'retrying'].includes(row.status)) active += 1;
      if (!['succeeded', 'cached', 'skipped', 'failed', 'cancelled'].includes(row.status)) remaining += 1;
      if (row.status === 'failed' && step?.onFailure !== 'continue') failed += 1;
    }
    const updated = (await this.query<RunRow>('setCounters', [runId, active, remaining, failed])).rows[0]!;
    await this.finishIfDone(out, await this.promote(out, updated, at), at);
  }
}
