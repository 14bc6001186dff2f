import type pg from 'pg';
import type { CreateRunRequest, CreatedRun } from '../store.js';
import { toRunRecord, type RunRow } from '../rows.js';
import { pgJson } from '../postgres/pg-json.js';
import { EMPTY_BUCKET, type BucketState } from './flow-decide.js';
import { PG_FLOW_SQL as SQL, type BucketRow } from './flow-sql.js';
import { runFlowAsync, startWithFlow, type FlowOp } from './flow-start.js';
import { idempotentRun, toBucketState } from './flow-rows.js';

// Flow control on PostgreSQL: the rules run inside the transaction that creates the run, holding the row lock of
// each bucket they read (SELECT ... FOR UPDATE) until it commits, so concurrent starts of one bucket take turns
// across every process.

/** Creates the run of `req` under its pipeline's flow rules (`create` makes a run as usual). */
export async function createRunWithFlowPg(client: pg.ClientBase, req: CreateRunRequest, now: number, create: (req: CreateRunRequest) => Promise<CreatedRun>): Promise<CreatedRun> {
  if (!req.flow) return create(req);
  const pipeline = req.pipeline.name;
  return runFlowAsync(startWithFlow(req, now), (op) => execOp(client, pipeline, op, create, now));
}

/**
 * Locks, in one sorted order, every bucket the flow requests of a batch will read: two transactions that each
 * create runs of several buckets then never wait for each other in a cycle (a deadlock). A lone request needs none.
 */
export async function lockBatchBuckets(client: pg.ClientBase, requests: CreateRunRequest[]): Promise<void> {
  const buckets = new Map<string, [string, string, string]>();
  for (const req of requests) {
    for (const [rule, key] of Object.entries(req.flow?.keys ?? {})) buckets.set(JSON.stringify([req.pipeline.name, rule, key]), [req.pipeline.name, rule, key]);
  }
  if (requests.length < 2 || buckets.size < 2) return;
  for (const id of [...buckets.keys()].sort()) await lockBucket(client, ...buckets.get(id)!);
}

async function execOp(client: pg.ClientBase, pipeline: string, op: FlowOp, create: (req: CreateRunRequest) => Promise<CreatedRun>, now: number): Promise<unknown> {
  switch (op.op) {
    case 'bucket':
      return lockBucket(client, pipeline, op.rule, op.key);
    case 'save': {
      const s = op.state;
      return void (await client.query(SQL.saveBucket, [pipeline, op.rule, op.key, s.windowStart, s.count, s.nextAt, s.firstAt, s.runId]));
    }
    case 'run': {
      const [row] = (await client.query<{ status: string; run_at: number }>(SQL.runState, [op.id])).rows;
      return row && { status: row.status, runAt: row.run_at };
    }
    case 'existing':
      return { run: toRunRecord(await runRow(client, op.id)), created: false, events: [] };
    case 'absorb':
      return absorb(client, op.id, op.input, op.runAt, op.absorbed, op.previous);
    case 'idempotent': {
      // Concurrent requests with one key queue here (the lock run creation takes too), so the second sees the first's run.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`idempotency:${pipeline}:${op.req.idempotencyKey}`]);
      const [row] = (await client.query<RunRow>('SELECT * FROM runs WHERE pipeline = $1 AND idempotency_key = $2', [pipeline, op.req.idempotencyKey])).rows;
      return idempotentRun(op.req, row, now);
    }
    case 'create':
      return create(op.req);
    case 'delay': {
      await client.query(SQL.delayNewAttempts, [op.id, op.runAt]);
      return toRunRecord((await client.query<RunRow>(SQL.delayRun, [op.id, op.runAt])).rows[0]!);
    }
    case 'mark':
      return void (await client.query(SQL.markRun, [op.id, op.absorbed, op.after]));
  }
}

async function runRow(client: pg.ClientBase, id: string): Promise<RunRow> {
  return (await client.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id])).rows[0]!;
}

async function lockBucket(client: pg.ClientBase, pipeline: string, rule: string, key: string): Promise<BucketState> {
  await client.query(SQL.ensureBucket, [pipeline, rule, key]);
  const [row] = (await client.query<BucketRow>(SQL.bucket, [pipeline, rule, key])).rows;
  return row ? toBucketState(row) : { ...EMPTY_BUCKET };
}

/** Gives a pending debounced run the latest input and start time; undefined when it has started meanwhile. */
async function absorb(client: pg.ClientBase, id: string, input: unknown, runAt: number, absorbed: number, previous?: { input: unknown }): Promise<CreatedRun | undefined> {
  // The attempts first, in the order a claim locks rows: a claim holding them makes this wait, then find none.
  const delayed = (await client.query(SQL.delayAttempts, [id, runAt])).rowCount ?? 0;
  if (delayed === 0) return undefined;
  const [row] = (
    previous
      ? await client.query<RunRow>(SQL.absorbRunIf, [id, pgJson(input), runAt, pgJson(previous.input)])
      : await client.query<RunRow>(SQL.absorbRun, [id, pgJson(input), runAt])
  ).rows;
  if (!row) return undefined;
  await client.query(SQL.markRun, [id, absorbed, null]);
  return { run: toRunRecord(row), created: false, events: [] };
}

/** Whether any run waits behind another (singleton queue): when none, releasing needs no transaction. */
export async function anyHeldRunsPg(client: pg.ClientBase | pg.Pool): Promise<boolean> {
  return (await client.query(SQL.anyHeld)).rows.length > 0;
}

/** Releases the runs a singleton queue held behind a run that has ended; returns their ids. */
export async function releaseHeldRunsPg(client: pg.ClientBase, now: number): Promise<string[]> {
  const ids = (await client.query<{ run_id: string }>(SQL.releasable)).rows.map((r) => r.run_id);
  for (const id of ids) {
    await client.query(SQL.releaseAttempts, [id, now]);
    await client.query(SQL.releaseRun, [id, now]);
    await client.query(SQL.clearAfter, [id]);
  }
  return ids;
}

/** The pending (not started) run of a debounce bucket, with its input. */
export async function pendingDebounceOfPg(client: pg.ClientBase | pg.Pool, pipeline: string, key: string): Promise<{ runId: string; input: unknown } | undefined> {
  const [row] = (await client.query<{ run_id: string; input: string }>(SQL.pendingDebounce, [pipeline, key])).rows;
  return row && { runId: row.run_id, input: JSON.parse(row.input) as unknown };
}

/** What the flow rules did to run `id`: requests absorbed (debounce) and the run it waits for (singleton queue). */
export async function runFlowOfPg(client: pg.ClientBase | pg.Pool, id: string): Promise<{ absorbed: number | null; afterRunId: string | null } | undefined> {
  const [row] = (await client.query<{ absorbed: number | null; after_run_id: string | null }>(SQL.runFlow, [id])).rows;
  return row && { absorbed: row.absorbed, afterRunId: row.after_run_id };
}
