import type Database from 'better-sqlite3';
import type { ErrorRecord } from '../../core/errors.js';
import { descendants } from '../../core/graph.js';
import type { Pipeline, RunStatus, Step, StepStatus } from '../../core/model.js';
import { needIsSettled } from '../../core/scheduler.js';
import { runStatesInto, stepStatesInto } from '../../core/state-machine.js';
import type { EventType, RunEvent } from '../store.js';
import { toJson, type RunRow, type StepRow } from './rows.js';

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

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/** SQL used inside transactions; each statement lists its parameters. */
const SQL = {
  // @id
  run: `SELECT * FROM runs WHERE id = @id`,
  // @id @active @remaining @failed
  addCounters: `UPDATE runs SET active = active + @active, remaining = remaining + @remaining, failed = failed + @failed
                WHERE id = @id RETURNING *`,
  // @id @status @at @error ; only from states that may enter @status (added per target below)
  setRunStatus: (to: RunStatus) =>
    `UPDATE runs SET status = '${to}', error = COALESCE(@error, error),
       finished_at = CASE WHEN '${to}' IN ('succeeded','failed','cancelled') THEN @at ELSE NULL END
     WHERE id = @id AND status IN (${inList(runStatesInto(to))})`,
  // @run_id @name
  decrementWaiting: `UPDATE steps SET waiting_on = waiting_on - 1 WHERE run_id = @run_id AND name = @name AND status = 'pending'`,
  // @run_id @limit
  readySteps: `SELECT name FROM steps WHERE run_id = @run_id AND status = 'pending' AND waiting_on = 0
               ORDER BY priority DESC, seq LIMIT @limit`,
  // @run_id @name
  queueStep: `UPDATE steps SET status = 'queued', attempts = attempts + 1
              WHERE run_id = @run_id AND name = @name AND status IN (${inList(stepStatesInto('queued'))}) RETURNING attempts`,
  // @run_id @step @number @status @priority @available_at @queued_at
  insertAttempt: `INSERT INTO attempts (run_id, step, number, status, priority, available_at, queued_at)
                  VALUES (@run_id, @step, @number, @status, @priority, @available_at, @queued_at)`,
  // @run_id @pipeline @step @type @data @at
  insertEvent: `INSERT INTO events (run_id, pipeline, step, type, data, at) VALUES (@run_id, @pipeline, @step, @type, @data, @at)`,
  // @run_id
  unstartedSteps: `SELECT name, status FROM steps WHERE run_id = @run_id AND status IN ('pending', 'queued', 'retrying')`,
  // @run_id
  liveSteps: `SELECT name, status FROM steps WHERE run_id = @run_id AND status IN ('pending', 'queued', 'retrying', 'running', 'blocked')`,
  // @run_id @name @at
  cancelStep: `UPDATE steps SET status = 'cancelled', finished_at = @at
               WHERE run_id = @run_id AND name = @name AND status IN (${inList(stepStatesInto('cancelled'))})`,
  // @run_id @step @at
  cancelAttempts: `UPDATE attempts SET status = 'cancelled', finished_at = @at, lease_expires_at = NULL
                   WHERE run_id = @run_id AND step = @step AND status IN ('queued', 'held', 'running')`,
  // @run_id
  allSteps: `SELECT * FROM steps WHERE run_id = @run_id ORDER BY seq`,
  // @run_id @name @waiting_on
  setWaiting: `UPDATE steps SET waiting_on = @waiting_on WHERE run_id = @run_id AND name = @name`,
  // @id @active @remaining @failed
  setCounters: `UPDATE runs SET active = @active, remaining = @remaining, failed = @failed WHERE id = @id`,
} as const;

/**
 * The scheduling rules of one run, applied inside a SQLite transaction: settling a step, queueing
 * what became ready, failing fast, cancelling and finishing. Every transition appends an event.
 */
export class RunTransitions {
  private readonly stmts: Record<string, Database.Statement>;
  private readonly statusStmts = new Map<RunStatus, Database.Statement>();

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

  pipelineOf(run: RunRow): CompiledPipeline {
    return this.compiled(run.pipeline, run.version);
  }

  getRun(id: string): RunRow | undefined {
    return this.stmt('run').get({ id }) as RunRow | undefined;
  }

  /** Appends an event row and collects it for the in-process bus. */
  emit(out: RunEvent[], run: Pick<RunRow, 'id' | 'pipeline'>, type: EventType, step: string | null, at: number, data?: Record<string, unknown>): void {
    const dataText = data === undefined ? null : JSON.stringify(data);
    const info = this.stmt('insertEvent').run({ run_id: run.id, pipeline: run.pipeline, step, type, data: dataText, at });
    out.push({ id: Number(info.lastInsertRowid), runId: run.id, pipeline: run.pipeline, step, type, data: data ?? null, at });
  }

  addCounters(id: string, delta: { active?: number; remaining?: number; failed?: number }): RunRow {
    return this.stmt('addCounters').get({ id, active: delta.active ?? 0, remaining: delta.remaining ?? 0, failed: delta.failed ?? 0 }) as RunRow;
  }

  /** Moves the run to `to` if the transition table allows it; emits `run.<to>` (or the given event). */
  setRunStatus(out: RunEvent[], run: RunRow, to: RunStatus, at: number, opts: { error?: ErrorRecord; event?: EventType; data?: Record<string, unknown> } = {}): boolean {
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
  insertAttempt(run: RunRow, step: string, number: number, at: number, availableAt: number, priority: number): void {
    const status = run.status === 'paused' ? 'held' : 'queued';
    this.stmt('insertAttempt').run({ run_id: run.id, step, number, status, priority: run.priority + priority, available_at: availableAt, queued_at: at });
  }

  /** Queues ready steps up to the run's max_parallel. */
  promote(out: RunEvent[], runId: string, at: number): void {
    const run = this.getRun(runId);
    if (!run || (run.status !== 'running' && run.status !== 'queued')) return;
    const compiled = this.pipelineOf(run);
    if (run.failed > 0 && compiled.definition.failFast) return;
    const slots = run.max_parallel - run.active;
    if (slots <= 0) return;
    const ready = this.stmt('readySteps').all({ run_id: run.id, limit: slots }) as Array<{ name: string }>;
    for (const { name } of ready) {
      const row = this.stmt('queueStep').get({ run_id: run.id, name }) as { attempts: number } | undefined;
      if (!row) continue;
      this.insertAttempt(run, name, row.attempts, at, Math.max(at, run.run_at), compiled.byName.get(name)?.priority ?? 0);
      this.emit(out, run, 'step.queued', name, at, { attempt: row.attempts });
    }
    if (ready.length > 0) this.addCounters(run.id, { active: ready.length });
  }

  /**
   * A step reached a state that lets dependents proceed (succeeded, cached, skipped, or failed with
   * on_failure: continue): free its slot, count it done, release dependents, queue what is ready.
   */
  settle(out: RunEvent[], run: RunRow, step: string, at: number, wasActive = true): void {
    const compiled = this.pipelineOf(run);
    for (const dependent of compiled.dependents.get(step) ?? []) this.stmt('decrementWaiting').run({ run_id: run.id, name: dependent });
    this.addCounters(run.id, { active: wasActive ? -1 : 0, remaining: -1 });
    this.promote(out, run.id, at);
    this.finishIfDone(out, run.id, at);
  }

  /** A step failed for good with on_failure: abort. */
  abort(out: RunEvent[], run: RunRow, step: string, at: number): void {
    const compiled = this.pipelineOf(run);
    this.addCounters(run.id, { active: -1, remaining: -1, failed: 1 });
    if (compiled.definition.failFast) {
      this.cancelSteps(out, run, null, at);
    } else {
      const downstream = descendants(compiled.definition, step);
      downstream.delete(step);
      this.cancelSteps(out, run, downstream, at);
      this.promote(out, run.id, at);
    }
    this.finishIfDone(out, run.id, at);
  }

  /** Cancels steps that have not started (all of them, or those in `only`). */
  cancelSteps(out: RunEvent[], run: RunRow, only: Set<string> | null, at: number, includeRunning = false): void {
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
    if (remaining > 0) this.addCounters(run.id, { active: -active, remaining: -remaining });
  }

  /** Ends the run when no step is left: failed if any step failed with abort, succeeded otherwise. */
  finishIfDone(out: RunEvent[], runId: string, at: number): void {
    const run = this.getRun(runId);
    if (!run || run.remaining > 0 || run.active > 0) return;
    if (run.status !== 'running' && run.status !== 'queued') return;
    if (run.failed > 0) {
      this.setRunStatus(out, run, 'failed', at, { error: { code: 'STEP_FAILED', message: 'one or more steps failed' } });
    } else {
      this.setRunStatus(out, run, 'succeeded', at);
    }
  }

  /** Ends a run now as cancelled or failed: every live step and attempt is cancelled. */
  terminate(out: RunEvent[], run: RunRow, to: 'cancelled' | 'failed', at: number, error?: ErrorRecord): void {
    this.cancelSteps(out, run, null, at, true);
    const opts = error ? { error } : {};
    this.setRunStatus(out, run, to, at, opts);
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
    this.stmt('setCounters').run({ id: runId, active, remaining, failed });
    this.promote(out, runId, at);
    this.finishIfDone(out, runId, at);
  }
}

export { toJson };
