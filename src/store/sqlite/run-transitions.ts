import type Database from 'better-sqlite3';
import type { ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import type { Pipeline, RunStatus, Step, StepStatus } from '../../core/model.js';
import { needIsSettled } from '../../core/scheduler.js';
import { runStatesInto, stepStatesInto } from '../../core/state-machine.js';
import { stepsFailedError, type FailedStepRow } from '../run-failure.js';
import type { EventType, RunEvent } from '../store.js';
import { toJson, type PackedEvent, type RunRow, type StepRow } from './rows.js';

/** A pipeline version as the scheduler needs it: the definition plus lookups. */
export interface CompiledPipeline {
  definition: Pipeline;
  byName: Map<string, Step>;
  dependents: Map<string, string[]>;
}

export function compilePipeline(definition: Pipeline): CompiledPipeline {
  const byName = new Map(definition.steps.map((s) => [s.name, s]));
  const dependents = new Map<string, string[]>(definition.steps.map((s) => [s.name, []]));
  for (const step of definition.steps) for (const need of step.needs) dependents.get(need)?.push(step.name);
  return { definition, byName, dependents };
}

const STEPS_FAILED: ErrorRecord = { code: 'STEP_FAILED', message: 'one or more steps failed' };

/** A run in these states ends when its last step settles (a paused run ends on resume). */
const ENDABLE = ['queued', 'running'].filter((s) => runStatesInto('succeeded').includes(s as RunStatus) && runStatesInto('failed').includes(s as RunStatus));

/**
 * SQL condition, over the row before the update, that a settle update adding `active` and `remaining` (SQL
 * expressions) ends the run. RETURNING sees the row after it; a run whose remaining count just reached 0
 * cannot have ended before (it had a step left).
 */
export function finishingWhen(active: string, remaining: string): string {
  return `remaining + ${remaining} = 0 AND active + ${active} = 0 AND status IN (${ENDABLE.map((s) => `'${s}'`).join(', ')})`;
}

const FINISHING = finishingWhen('@active', '@remaining');

/** The run error of a run that ends because steps failed, as stored. */
export const STEPS_FAILED_JSON = JSON.stringify(STEPS_FAILED);

/**
 * The columns scheduling reads after changing a run's counters (not the input, which can be large);
 * attempt-batches.ts reads them in this order.
 */
export const COUNTER_COLUMNS = 'id, pipeline, version, status, priority, force, max_parallel, remaining, active, failed, run_at';

/** A run as scheduling sees it after a counter update. */
export type RunCounters = Pick<RunRow, 'id' | 'pipeline' | 'version' | 'status' | 'priority' | 'force' | 'max_parallel' | 'remaining' | 'active' | 'failed' | 'run_at'>;

/** Event rows written per INSERT statement. */
const EVENT_CHUNK = 64;
/** Parameters of one event row: id, run_id, pipeline, step, type, data, at, more. */
const EVENT_COLUMNS = 8;
/** Consecutive events of one run packed into one row, at most. */
const EVENTS_PER_ROW = 32;

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/** SQL used inside transactions; each statement lists its parameters. */
const SQL = {
  // @id
  run: `SELECT * FROM runs WHERE id = @id`,
  lastEventId: `SELECT COALESCE(MAX(id), 0) AS id FROM events`,
  // @id @active @remaining @failed
  addCounters: `UPDATE runs SET active = active + @active, remaining = remaining + @remaining, failed = failed + @failed
                WHERE id = @id RETURNING ${COUNTER_COLUMNS}`,
  // @id @status @at @error ; only from states that may enter @status (added per target below)
  setRunStatus: (to: RunStatus) =>
    `UPDATE runs SET status = '${to}', error = COALESCE(@error, error),
       finished_at = CASE WHEN '${to}' IN ('succeeded','failed','cancelled') THEN @at ELSE NULL END
     WHERE id = @id AND status IN (${inList(runStatesInto(to))})`,
  // @id @active @remaining @at: settles one step and, when nothing is left, ends the run in the same write.
  settleCounters: `UPDATE runs SET active = active + @active, remaining = remaining + @remaining,
      status = CASE WHEN ${FINISHING} THEN (CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END) ELSE status END,
      error = CASE WHEN ${FINISHING} AND failed > 0 THEN '${STEPS_FAILED_JSON}' ELSE error END,
      finished_at = CASE WHEN ${FINISHING} THEN @at ELSE finished_at END
    WHERE id = @id
    RETURNING ${COUNTER_COLUMNS}, (remaining = 0 AND active = 0 AND finished_at = @at AND status IN ('succeeded', 'failed')) AS finished`,
  // @run_id @name
  decrementWaiting: `UPDATE steps SET waiting_on = waiting_on - 1 WHERE run_id = @run_id AND name = @name AND status = 'pending'`,
  // @run_id @limit
  readySteps: `SELECT name FROM steps WHERE run_id = @run_id AND status = 'pending' AND waiting_on = 0
               ORDER BY priority DESC, seq LIMIT @limit`,
  // @run_id @name
  queueStep: `UPDATE steps SET status = 'queued', attempts = attempts + 1
              WHERE run_id = @run_id AND name = @name AND status IN (${inList(stepStatesInto('queued'))}) RETURNING attempts, force, feedback`,
  // @run_id @step @number @status @priority @force @available_at @queued_at @feedback
  insertAttempt: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback)
                  VALUES (@run_id, @step, @number, @status, @priority, @force, @available_at, @queued_at, @feedback)`,
  // the same, plus @key_path (JSON path of the step in runs.concurrency_keys) @template @limit: an attempt of a
  // step with a concurrency_key takes the key its run rendered (the key's text when the run has none)
  insertKeyedAttempt: `INSERT INTO attempts (run_id, step, number, status, priority, force, available_at, queued_at, feedback,
                    concurrency_key, concurrency_limit)
                  VALUES (@run_id, @step, @number, @status, @priority, @force, @available_at, @queued_at, @feedback,
                    COALESCE((SELECT json_extract(concurrency_keys, @key_path) FROM runs WHERE id = @run_id), @template), @limit)`,
  // @run_id
  unstartedSteps: `SELECT name, status FROM steps WHERE run_id = @run_id AND status IN ('pending', 'queued', 'retrying') ORDER BY seq`,
  // @run_id
  liveSteps: `SELECT name, status FROM steps WHERE run_id = @run_id AND status IN ('pending', 'queued', 'retrying', 'running', 'blocked') ORDER BY seq`,
  // @run_id @name @at
  cancelStep: `UPDATE steps SET status = 'cancelled', finished_at = @at
               WHERE run_id = @run_id AND name = @name AND status IN (${inList(stepStatesInto('cancelled'))})`,
  // @run_id @step @at
  cancelAttempts: `UPDATE attempts SET status = 'cancelled', finished_at = @at, lease_expires_at = NULL
                   WHERE run_id = @run_id AND step = @step AND status IN ('queued', 'held', 'running')`,
  // @run_id
  liveChildren: `SELECT * FROM runs WHERE parent_run_id = @run_id AND status IN ('queued', 'running', 'paused', 'waiting')`,
  // @run_id
  allSteps: `SELECT * FROM steps WHERE run_id = @run_id ORDER BY seq`,
  // @run_id @name @waiting_on
  setWaiting: `UPDATE steps SET waiting_on = @waiting_on WHERE run_id = @run_id AND name = @name`,
  // @run_id: the steps that failed, in the order they failed
  failedSteps: `SELECT name, error FROM steps WHERE run_id = @run_id AND status = 'failed' ORDER BY finished_at, seq`,
  // @id @error
  setRunError: `UPDATE runs SET error = @error WHERE id = @id`,
  // @id @active @remaining @failed
  setCounters: `UPDATE runs SET active = @active, remaining = @remaining, failed = @failed WHERE id = @id RETURNING ${COUNTER_COLUMNS}`,
} as const;

/**
 * The scheduling rules of one run, applied inside a SQLite transaction: settling a step, queueing
 * what became ready, failing fast, cancelling and finishing. Every transition appends an event.
 */
export class RunTransitions {
  private readonly stmts: Record<string, Database.Statement>;
  private readonly statusStmts = new Map<RunStatus, Database.Statement>();
  private readonly eventStmts = new Map<number, Database.Statement>();
  private readonly unwritten: RunEvent[] = [];
  /** Called when a run reaches a terminal state (the store completes a parent's `pipeline` step). */
  onRunEnded: ((out: RunEvent[], runId: string, status: 'succeeded' | 'failed' | 'cancelled', at: number) => void) | null = null;

  constructor(
    private readonly db: Database.Database,
    private readonly compiled: (pipeline: string, version: number) => CompiledPipeline,
  ) {
    this.stmts = {};
    for (const [key, sql] of Object.entries(SQL)) if (typeof sql === 'string') this.stmts[key] = db.prepare(sql);
  }

  private stmt(key: keyof typeof SQL): Database.Statement {
    return this.stmts[key]!;
  }

  pipelineOf(run: Pick<RunRow, 'pipeline' | 'version'>): CompiledPipeline {
    return this.compiled(run.pipeline, run.version);
  }

  getRun(id: string): RunRow | undefined {
    return this.stmt('run').get({ id }) as RunRow | undefined;
  }

  /**
   * Records an event: collected for the in-process bus and written by {@link flushEvents} before the
   * transaction commits, many rows per INSERT.
   */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void {
    const event: RunEvent = { id: 0, runId: run.id, pipeline: run.pipeline, step, type, data: data ?? null, at };
    out.push(event);
    this.unwritten.push(event);
  }

  /**
   * Writes the events emitted in this transaction and fills in their ids, consecutive events of one run
   * packed into one row (migration 7). Call before commit: this transaction is the only writer, so the ids
   * after the largest one stored are free.
   */
  flushEvents(): void {
    const events = this.unwritten.splice(0);
    if (events.length === 0) return;
    let id = (this.stmt('lastEventId').get() as { id: number }).id;
    let params: unknown[] = [];
    for (let i = 0; i < events.length; ) {
      const first = events[i]!;
      first.id = ++id;
      let end = i + 1;
      let more: PackedEvent[] | null = null;
      for (; end < events.length && end - i < EVENTS_PER_ROW && events[end]!.runId === first.runId; end++) {
        const e = events[end]!;
        e.id = ++id;
        (more ??= []).push([e.step, e.type, e.data, e.at]);
      }
      params.push(id, first.runId, first.pipeline, first.step, first.type, first.data === null ? null : JSON.stringify(first.data), first.at, more && JSON.stringify(more));
      i = end;
      if (params.length === EVENT_CHUNK * EVENT_COLUMNS || i === events.length) {
        this.insertEvents(params.length / EVENT_COLUMNS).run(params);
        params = [];
      }
    }
  }

  /** Drops emitted events when a transaction rolls back. */
  discardEvents(): void {
    this.unwritten.length = 0;
  }

  private insertEvents(rows: number): Database.Statement {
    let stmt = this.eventStmts.get(rows);
    if (!stmt) {
      const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      stmt = this.db.prepare(`INSERT INTO events (id, run_id, pipeline, step, type, data, at, more) VALUES ${values}`);
      this.eventStmts.set(rows, stmt);
    }
    return stmt;
  }

  addCounters(id: string, delta: { active?: number; remaining?: number; failed?: number }): RunCounters {
    return this.stmt('addCounters').get({ id, active: delta.active ?? 0, remaining: delta.remaining ?? 0, failed: delta.failed ?? 0 }) as RunCounters;
  }

  /** Moves the run to `to` if the transition table allows it; emits `run.<to>` (or the given event). */
  setRunStatus(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, to: RunStatus, at: number, opts: { error?: ErrorRecord; event?: EventType; data?: Record<string, unknown> } = {}): boolean {
    let stmt = this.statusStmts.get(to);
    if (!stmt) {
      stmt = this.db.prepare(SQL.setRunStatus(to));
      this.statusStmts.set(to, stmt);
    }
    const changed = stmt.run({ id: run.id, at, error: opts.error ? JSON.stringify(opts.error) : null }).changes > 0;
    if (changed) {
      const data = opts.data ?? (opts.error ? { error: opts.error } : undefined);
      this.emit(out, run, opts.event ?? (`run.${to}` as EventType), null, at, data);
    }
    return changed;
  }

  /** Inserts the next attempt of a step that is already marked queued/retrying. */
  insertAttempt(run: RunCounters, step: string, number: number, at: number, availableAt: number, priority: number, force = false, feedback: string | null = null): void {
    const status = run.status === 'paused' ? 'held' : 'queued';
    const forced = force || run.force === 1 ? 1 : 0;
    const values = { run_id: run.id, step, number, status, priority: run.priority + priority, force: forced, available_at: availableAt, queued_at: at, feedback };
    const def = this.pipelineOf(run).byName.get(step);
    if (!def || def.concurrencyKey === null) this.stmt('insertAttempt').run(values);
    else this.stmt('insertKeyedAttempt').run({ ...values, key_path: `$.${JSON.stringify(step)}`, template: def.concurrencyKey, limit: def.concurrencyLimit ?? 1 });
  }

  /** Queues ready steps up to the run's max_parallel; returns the run with its counters updated. */
  promote(out: RunEvent[], run: RunCounters, at: number): RunCounters {
    // A waiting run (a step awaits a human) goes on with its independent branches.
    if (run.status !== 'running' && run.status !== 'queued' && run.status !== 'waiting') return run;
    const slots = run.max_parallel - run.active;
    // remaining counts every unfinished step; when all of them are active, none is pending.
    if (slots <= 0 || run.remaining <= run.active) return run;
    const compiled = this.pipelineOf(run);
    if (run.failed > 0 && compiled.definition.failFast) return run;
    const ready = this.stmt('readySteps').all({ run_id: run.id, limit: slots }) as Array<{ name: string }>;
    if (ready.length === 0) return run;
    for (const { name } of ready) {
      const row = this.stmt('queueStep').get({ run_id: run.id, name }) as { attempts: number; force: number; feedback: string | null } | undefined;
      if (!row) continue;
      this.insertAttempt(run, name, row.attempts, at, Math.max(at, run.run_at), compiled.byName.get(name)?.priority ?? 0, row.force === 1, row.feedback);
      this.emit(out, run, 'step.queued', name, at, { attempt: row.attempts });
    }
    return this.addCounters(run.id, { active: ready.length });
  }

  /**
   * A step reached a state that lets dependents proceed (succeeded, cached, skipped, or failed with
   * on_failure: continue): free its slot, count it done, release dependents, queue what is ready.
   */
  settle(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline' | 'version'>, step: string, at: number, wasActive = true): void {
    this.releaseDependents(run, step);
    const row = this.stmt('settleCounters').get({ id: run.id, active: wasActive ? -1 : 0, remaining: -1, at }) as RunCounters & { finished: number };
    this.afterSettle(out, row, at);
  }

  /** One need of each step that needs `step` is settled. */
  releaseDependents(run: Pick<RunRow, 'id' | 'pipeline' | 'version'>, step: string): void {
    const dependents = this.pipelineOf(run).dependents.get(step);
    if (dependents) for (const dependent of dependents) this.stmt('decrementWaiting').run({ run_id: run.id, name: dependent });
  }

  /** After a step settled (`row`: the run's counters after): ends the run, or queues what became ready. */
  afterSettle(out: RunEvent[], row: RunCounters & { finished: number }, at: number): void {
    if (row.finished === 1) {
      let data: Record<string, unknown> | undefined;
      if (row.failed > 0) {
        // The settle statement stored a generic error; the run's error names the step that failed it.
        const error = this.failureOf(row);
        this.stmt('setRunError').run({ id: row.id, error: JSON.stringify(error) });
        data = { error };
      }
      this.emit(out, row, `run.${row.status}` as EventType, null, at, data);
      this.onRunEnded?.(out, row.id, row.status as 'succeeded' | 'failed', at);
      return;
    }
    this.promote(out, row, at);
  }

  /** A step failed for good with on_failure: abort. */
  abort(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline' | 'version'>, step: string, at: number, wasActive = true): void {
    const compiled = this.pipelineOf(run);
    let row = this.addCounters(run.id, { active: wasActive ? -1 : 0, remaining: -1, failed: 1 });
    if (compiled.definition.failFast) {
      row = this.cancelSteps(out, row, null, at);
    } else {
      const downstream = descendants(compiled.definition, step);
      downstream.delete(step);
      row = this.promote(out, this.cancelSteps(out, row, downstream, at), at);
    }
    this.finishIfDone(out, row, at);
  }

  /** Cancels steps that have not started (all of them, or those in `only`). */
  cancelSteps(out: RunEvent[], run: RunCounters, only: Set<string> | null, at: number, includeRunning = false): RunCounters {
    const rows = this.stmt(includeRunning ? 'liveSteps' : 'unstartedSteps').all({ run_id: run.id }) as Array<{ name: string; status: StepStatus }>;
    let active = 0;
    let remaining = 0;
    for (const { name, status } of rows) {
      if (only && !only.has(name)) continue;
      if (this.stmt('cancelStep').run({ run_id: run.id, name, at }).changes === 0) continue;
      this.stmt('cancelAttempts').run({ run_id: run.id, step: name, at });
      remaining += 1;
      if (status !== 'pending' && status !== 'blocked') active += 1;
      this.emit(out, run, 'step.cancelled', name, at);
    }
    return remaining > 0 ? this.addCounters(run.id, { active: -active, remaining: -remaining }) : run;
  }

  /** Ends the run when no step is left: failed if any step failed with abort, succeeded otherwise. */
  finishIfDone(out: RunEvent[], run: RunCounters, at: number): void {
    if (run.remaining > 0 || run.active > 0) return;
    if (run.status !== 'running' && run.status !== 'queued') return;
    const to = run.failed > 0 ? 'failed' : 'succeeded';
    if (this.setRunStatus(out, run, to, at, run.failed > 0 ? { error: this.failureOf(run) } : {})) this.onRunEnded?.(out, run.id, to, at);
  }

  /** The error of a run that failed because steps failed: names the first one and its error. */
  failureOf(run: Pick<RunRow, 'id' | 'pipeline' | 'version'>): ErrorRecord {
    const failed = this.stmt('failedSteps').all({ run_id: run.id }) as FailedStepRow[];
    return stepsFailedError(failed, this.pipelineOf(run).byName);
  }

  /** Ends a run now as cancelled or failed: every live step and attempt is cancelled. */
  terminate(out: RunEvent[], run: RunCounters, to: 'cancelled' | 'failed', at: number, error?: ErrorRecord): void {
    this.cancelSteps(out, run, null, at, true);
    const opts = error ? { error } : {};
    if (!this.setRunStatus(out, run, to, at, opts)) return;
    // Child runs of `pipeline` steps end with their parent.
    for (const child of this.stmt('liveChildren').all({ run_id: run.id }) as RunRow[]) this.terminate(out, child, 'cancelled', at);
    this.onRunEnded?.(out, run.id, to, at);
  }

  /**
   * Recomputes waiting counts and run counters from the step rows, after steps were put back to
   * pending by retry or rollback; then queues what is ready.
   */
  rebuild(out: RunEvent[], runId: string, at: number): void {
    const run = this.getRun(runId)!;
    const { byName } = this.pipelineOf(run);
    const rows = this.stmt('allSteps').all({ run_id: runId }) as StepRow[];
    const statusOf = new Map(rows.map((r) => [r.name, r.status]));
    let active = 0;
    let remaining = 0;
    let failed = 0;
    for (const row of rows) {
      const step = byName.get(row.name);
      if (row.status === 'pending' && step) {
        const waiting = step.needs.filter((n) => !needIsSettled(statusOf.get(n) ?? 'pending', byName.get(n))).length;
        this.stmt('setWaiting').run({ run_id: runId, name: row.name, waiting_on: waiting });
      }
      if (['queued', 'running', 'retrying'].includes(row.status)) active += 1;
      if (!['succeeded', 'cached', 'skipped', 'failed', 'cancelled'].includes(row.status)) remaining += 1;
      if (row.status === 'failed' && step?.onFailure !== 'continue') failed += 1;
    }
    const updated = this.stmt('setCounters').get({ id: runId, active, remaining, failed }) as RunCounters;
    this.finishIfDone(out, this.promote(out, updated, at), at);
  }
}

export { toJson };
