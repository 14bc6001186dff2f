import type { CreateRunRequest, CreatedRun } from '../store.js';
import { toJson, toRunRecord, type RunRow } from '../rows.js';
import type { SqliteCtx } from '../sqlite/sqlite-context.js';
import { EMPTY_BUCKET, type BucketState } from './flow-decide.js';
import { SQLITE_FLOW_SQL as SQL, type BucketRow } from './flow-sql.js';
import { runFlowSync, startWithFlow, type FlowOp } from './flow-start.js';
import { idempotentRun, toBucketState } from './flow-rows.js';

// Flow control on SQLite: the rules run inside the write transaction of createRuns, which BEGIN IMMEDIATE
// serialises across every process sharing the file.

/** Creates the run of `req` under its pipeline's flow rules (`create` makes a run as usual). */
export function createRunWithFlow(c: SqliteCtx, req: CreateRunRequest, now: number, create: (req: CreateRunRequest) => CreatedRun): CreatedRun {
  if (!req.flow) return create(req);
  const pipeline = req.pipeline.name;
  return runFlowSync(startWithFlow(req, now), (op) => execOp(c, pipeline, op, create, now));
}

function execOp(c: SqliteCtx, pipeline: string, op: FlowOp, create: (req: CreateRunRequest) => CreatedRun, now: number): unknown {
  switch (op.op) {
    case 'bucket':
      return lockBucket(c, pipeline, op.rule, op.key);
    case 'save':
      return void c.prepared(SQL.saveBucket).run({ pipeline, rule: op.rule, key: op.key, ...bucketParams(op.state) });
    case 'run': {
      const row = c.prepared(SQL.runState).get({ id: op.id }) as { status: string; run_at: number } | undefined;
      return row && { status: row.status, runAt: row.run_at };
    }
    case 'existing':
      return { run: toRunRecord(c.prepared('SELECT * FROM runs WHERE id = @id').get({ id: op.id }) as RunRow), created: false, events: [] };
    case 'absorb':
      return absorb(c, op.id, op.input, op.runAt, op.absorbed, op.previous);
    case 'idempotent':
      return idempotentRun(op.req, c.prepared('SELECT * FROM runs WHERE pipeline = @pipeline AND idempotency_key = @key').get({ pipeline, key: op.req.idempotencyKey }) as RunRow | undefined, now);
    case 'create': {
      const created = create(op.req);
      // The run's input may still change (debounce): this process must read it again when it claims the run.
      c.forget?.(created.run.id);
      return created;
    }
    case 'delay': {
      c.prepared(SQL.delayNewAttempts).run({ id: op.id, run_at: op.runAt });
      return toRunRecord(c.prepared(SQL.delayRun).get({ id: op.id, run_at: op.runAt }) as RunRow);
    }
    case 'mark':
      return void c.prepared(SQL.markRun).run({ run_id: op.id, absorbed: op.absorbed, after_run_id: op.after });
  }
}

function lockBucket(c: SqliteCtx, pipeline: string, rule: string, key: string): BucketState {
  c.prepared(SQL.ensureBucket).run({ pipeline, rule, key });
  const row = c.prepared(SQL.bucket).get({ pipeline, rule, key }) as BucketRow | undefined;
  return row ? toBucketState(row) : { ...EMPTY_BUCKET };
}

function bucketParams(s: BucketState): Record<string, unknown> {
  return { window_start: s.windowStart, count: s.count, next_at: s.nextAt, first_at: s.firstAt, run_id: s.runId };
}

/** Gives a pending debounced run the latest input and start time; undefined when it has started meanwhile. */
function absorb(c: SqliteCtx, id: string, input: unknown, runAt: number, absorbed: number, previous?: { input: unknown }): CreatedRun | undefined {
  const delayed = c.prepared(SQL.delayAttempts).run({ id, run_at: runAt }).changes;
  if (delayed === 0) return undefined;
  const row = (
    previous
      ? c.prepared(SQL.absorbRunIf).get({ id, input: toJson(input), run_at: runAt, previous: toJson(previous.input) })
      : c.prepared(SQL.absorbRun).get({ id, input: toJson(input), run_at: runAt })
  ) as RunRow | undefined;
  if (!row) return undefined;
  c.forget?.(id);
  c.prepared(SQL.markRun).run({ run_id: id, absorbed, after_run_id: null });
  return { run: toRunRecord(row), created: false, events: [] };
}

/** Whether any run waits behind another (singleton queue): when none, releasing needs no write lock. */
export function anyHeldRuns(c: SqliteCtx): boolean {
  return c.prepared(SQL.anyHeld).get() !== undefined;
}

/** Releases the runs a singleton queue held behind a run that has ended; returns their ids. */
export function releaseHeldRuns(c: SqliteCtx, now: number): string[] {
  const ids = (c.prepared(SQL.releasable).all() as Array<{ run_id: string }>).map((r) => r.run_id);
  for (const id of ids) {
    c.prepared(SQL.releaseAttempts).run({ id, now });
    c.prepared(SQL.releaseRun).run({ id, now });
    c.prepared(SQL.clearAfter).run({ id });
  }
  return ids;
}

/** The pending (not started) run of a debounce bucket, with its input. */
export function pendingDebounceOf(c: SqliteCtx, pipeline: string, key: string): { runId: string; input: unknown } | undefined {
  const row = c.prepared(SQL.pendingDebounce).get({ pipeline, key }) as { run_id: string; input: string } | undefined;
  return row && { runId: row.run_id, input: JSON.parse(row.input) as unknown };
}

/** What the flow rules did to run `id`: requests absorbed (debounce) and the run it waits for (singleton queue). */
export function runFlowOf(c: SqliteCtx, id: string): { absorbed: number | null; afterRunId: string | null } | undefined {
  const row = c.prepared(SQL.runFlow).get({ run_id: id }) as { absorbed: number | null; after_run_id: string | null } | undefined;
  return row && { absorbed: row.absorbed, afterRunId: row.after_run_id };
}
