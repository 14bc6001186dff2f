import type Database from 'better-sqlite3';
import type { AttemptResult } from '../store.js';
import { settlesStep } from '../ledger/attempt-rows.js';
import { finishingWhen, RUN_STATE, STEPS_FAILED_JSON, type RunState } from '../ledger/transitions.js';

/** A settle update over a batch (one active step per run) ends a run when, before the update, this holds. */
const FINISHING = finishingWhen('-1', '-1');

/**
 * Set-based SQL over a batch: every statement takes one JSON array of rows (`json_each`), so a batch of
 * claims or results costs a few statements instead of a few per attempt. Rows are arrays read by position.
 */
const SQL = {
  // @now @ids (JSON array of run ids): runs of claimed attempts that start now. The unary + keeps the planner off
  // the status index: with `status = 'queued'` usable it walked every queued run and matched each against the ids
  // (1,000,000 runs created in bulk: 624 µs per claimed run over the first 100,000 claimed).
  startRuns: `UPDATE runs SET status = 'running', started_at = @now
              WHERE id IN (SELECT value FROM json_each(@ids)) AND +status = 'queued' RETURNING id`,
  // @now @rows ([id, fence, owner, status, processing_ms, error, usage, output, cache_key] per result): attempts still
  // held that succeeded (or were cached or skipped), each finishing its step in the same update
  finishSteps: `UPDATE steps SET attempt_status = j.status, attempt_finished_at = @now, processing_ms = j.ms, attempt_error = j.error,
                  usage = j.usage, lease_expires_at = NULL, ${settlesStep({ status: 'j.status', output: 'j.output', cacheKey: 'j.cache_key', now: '@now' })}
                FROM (SELECT value ->> 0 AS id, value ->> 1 AS fence, value ->> 2 AS owner, value ->> 3 AS status, value ->> 4 AS ms,
                        value ->> 5 AS error, value ->> 6 AS usage, value ->> 7 AS output, value ->> 8 AS cache_key FROM json_each(@rows)) AS j
                WHERE steps.id = j.id AND steps.fence = j.fence AND steps.owner = j.owner AND steps.attempt_status = 'running'
                RETURNING steps.id AS id, steps.run_id AS run_id, steps.name AS step, steps.attempts AS number`,
  // @now @ids (JSON array of run ids, each once): settles one active step of each run and ends the runs with
  // nothing left, as RunTransitions.settle does for one
  settleRuns: `UPDATE runs SET active = active - 1, remaining = remaining - 1,
      status = CASE WHEN ${FINISHING} THEN (CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END) ELSE status END,
      error = CASE WHEN ${FINISHING} AND failed > 0 THEN '${STEPS_FAILED_JSON}' ELSE error END,
      finished_at = CASE WHEN ${FINISHING} THEN @now ELSE finished_at END
    WHERE id IN (SELECT value FROM json_each(@ids))
    RETURNING ${RUN_STATE}, (remaining = 0 AND active = 0 AND finished_at = @now AND status IN ('succeeded', 'failed')) AS finished`,
} as const;

/** The batch start of claimed runs, exported for the plan test. */
export const START_RUNS_SQL = SQL.startRuns;

/** A row of settleRuns: the columns of {@link RUN_STATE} in order, then `finished`. */
type SettledRow = [string, string, number, RunState['status'], number, number, number, number, number, number, number, string | null, number];

/** An attempt whose result was recorded. */
export interface FinishedAttempt {
  id: number;
  run_id: string;
  step: string;
  number: number;
}

/** A step whose run recorded it as finished with an output. */
export interface FinishedStep {
  runId: string;
  step: string;
  status: 'succeeded' | 'cached' | 'skipped';
  /** JSON text. */
  output: string;
  cacheKey: string | null;
}

/** Outcomes recorded by {@link AttemptBatches.finishSteps}; the others need the run's rules one by one. */
export function isPlainOutcome(r: AttemptResult): boolean {
  return (r.outcome === 'succeeded' || r.outcome === 'cached' || r.outcome === 'skipped') && r.decision === undefined;
}

/** Batch statements of the claim and completion paths (see {@link SQL}). */
export class AttemptBatches {
  private readonly stmts: { [K in keyof typeof SQL]: Database.Statement };

  constructor(db: Database.Database) {
    // Rows come back as arrays (raw) or single values (pluck): no object with named keys per row.
    this.stmts = {
      startRuns: db.prepare(SQL.startRuns).pluck(),
      finishSteps: db.prepare(SQL.finishSteps).raw(),
      settleRuns: db.prepare(SQL.settleRuns).raw(),
    };
  }

  /** Starts the runs of claimed attempts; returns the ids of the runs that were queued until now. */
  startRuns(claimed: ReadonlyArray<{ run_id: string }>, now: number): Set<string> {
    const runIds = new Set(claimed.map((c) => c.run_id));
    return new Set(this.stmts.startRuns.all({ now, ids: JSON.stringify([...runIds]) }) as string[]);
  }

  /**
   * Records results that finish their steps (succeeded, cached, skipped; `outputs[i]` is the JSON text of
   * `results[i]`'s) where the attempt is still held by its owner (same fence); returns those, by attempt id.
   */
  finishSteps(results: readonly AttemptResult[], outputs: readonly string[], now: number): Map<number, FinishedAttempt> {
    const rows = results.map((r, i) => [
      r.attemptId,
      r.fence,
      r.owner,
      r.outcome,
      r.processingMs,
      r.error ? JSON.stringify(r.error) : null,
      r.usage ? JSON.stringify(r.usage) : null,
      outputs[i],
      r.cacheKey ?? null,
    ]);
    const finished = new Map<number, FinishedAttempt>();
    for (const [id, run_id, step, number] of this.stmts.finishSteps.all({ now, rows: JSON.stringify(rows) }) as Array<[number, string, string, number]>) {
      finished.set(id, { id, run_id, step, number });
    }
    return finished;
  }

  /** Settles one active step in each of `runIds` (each at most once); returns the counters after, by run id. */
  settleRuns(runIds: readonly string[], now: number): Map<string, RunState & { finished: number }> {
    if (runIds.length === 0) return new Map();
    const settled = new Map<string, RunState & { finished: number }>();
    for (const row of this.stmts.settleRuns.all({ now, ids: JSON.stringify(runIds) }) as SettledRow[]) {
      const [id, pipeline, version, status, priority, force, max_parallel, remaining, active, failed, run_at, parent_run_id, finished] = row;
      settled.set(id, { id, pipeline, version, status, priority, force, max_parallel, remaining, active, failed, run_at, parent_run_id, finished });
    }
    return settled;
  }
}
