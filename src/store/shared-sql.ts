import { SluiceError } from '../core/errors.js';
import type { Pipeline } from '../core/model.js';
import type { StepItem } from '../core/step-results.js';
import { all, get, lockKey, run, sql, type Rule } from './ledger/effects.js';
import { compilePipeline, type CompiledPipeline } from './ledger/ledger-tx.js';
import { toStoredPipeline, type PipelineRow } from './rows.js';
import type { AttemptLease, LogLine, PipelineSource, StoredPipeline } from './store.js';

/**
 * Statements both drivers run outside the ledger's rules (stored pipelines, a run's steps, attempts and logs, the
 * step cache, rate windows, item checkpoints, the queue depth, dead letters), written once in the ledger's style
 * (./ledger/effects.ts): SQLite runs them on its feature runner's prepared statements, PostgreSQL as named
 * statements. Each lists its parameters.
 */
export const SHARED = {
  // $1 key: on PostgreSQL, serializes transactions on one key until commit; SQLite's write transaction already does
  // $1 name $2 version
  pipeline: sql('storePipeline', `SELECT * FROM pipelines WHERE name = $1 AND version = $2`),
  // $1 name
  latestPipeline: sql('storeLatestPipeline', `SELECT * FROM pipelines WHERE name = $1 ORDER BY version DESC LIMIT 1`),
  // (none)
  latestPipelines: sql('storeLatestPipelines', {
    sqlite: `SELECT p.* FROM pipelines p JOIN (SELECT name, MAX(version) AS version FROM pipelines GROUP BY name) l
               ON l.name = p.name AND l.version = p.version ORDER BY p.name`,
    pg: `SELECT DISTINCT ON (name) * FROM pipelines ORDER BY name, version DESC`,
  }),
  // $1 name
  pipelineVersions: sql('storePipelineVersions', `SELECT * FROM pipelines WHERE name = $1 ORDER BY version DESC`),
  // $1 name $2 version $3 hash $4 definition $5 source $6 source_file $7 created_at
  insertPipeline: sql(
    'storeInsertPipeline',
    `INSERT INTO pipelines (name, version, hash, definition, source, source_file, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  ),
  // $1 pipeline
  resetCache: sql('storeResetCache', `DELETE FROM step_cache WHERE pipeline = $1`),
  // $1 run_id
  steps: sql('storeSteps', `SELECT * FROM steps WHERE run_id = $1 ORDER BY seq`),
  // $1 run_id: every attempt (earlier ones in attempts, each step's live or last one on its row), in the order queued;
  // a step's in number order (an earlier attempt copied into attempts has a greater id than its step's)
  attempts: sql('storeAttempts', `SELECT * FROM all_attempts WHERE run_id = $1 ORDER BY queued_at, number, id`),
  // $1 run_id $2 step
  stepAttempts: sql('storeStepAttempts', `SELECT * FROM all_attempts WHERE run_id = $1 AND step = $2 ORDER BY number`),
  // $1 run_id
  logs: sql('storeLogs', `SELECT * FROM logs WHERE run_id = $1 ORDER BY id`),
  // $1 run_id $2 step
  stepLogs: sql('storeStepLogs', `SELECT * FROM logs WHERE run_id = $1 AND step = $2 ORDER BY id`),
  // $1 pipeline $2 key
  cache: sql('storeCache', `SELECT output, run_id, outputs FROM step_cache WHERE pipeline = $1 AND cache_key = $2`),
  // $1 pipeline $2 step: the latest cached result of a step, what a miss is explained against
  latestCache: sql('storeLatestCache', `SELECT run_id, parts FROM step_cache WHERE pipeline = $1 AND step = $2 ORDER BY created_at DESC LIMIT 1`),
  // $1 key $2 window
  rateWindow: sql('storeRateWindow', `SELECT requests, tokens FROM rate_windows WHERE key = $1 AND "window" = $2`),
  // $1 key $2 window $3 tokens
  takeRate: sql(
    'storeTakeRate',
    `INSERT INTO rate_windows (key, "window", requests, tokens) VALUES ($1, $2, 1, $3)
     ON CONFLICT (key, "window") DO UPDATE SET requests = rate_windows.requests + 1, tokens = rate_windows.tokens + EXCLUDED.tokens`,
  ),
  // $1 key $2 window $3 delta: never below zero
  settleRate: sql('storeSettleRate', `UPDATE rate_windows SET tokens = CASE WHEN tokens + $3 > 0 THEN tokens + $3 ELSE 0 END WHERE key = $1 AND "window" = $2`),
  // $1 before
  pruneRates: sql('storePruneRates', `DELETE FROM rate_windows WHERE "window" < $1`),
  // $1 run_id $2 step
  stepItems: sql('storeStepItems', `SELECT idx, status, output, error FROM step_items WHERE run_id = $1 AND step = $2 ORDER BY idx`),
  // $1 run_id $2 step $3 idx $4 status $5 output $6 error $7 now
  putStepItem: sql(
    'storePutStepItem',
    `INSERT INTO step_items (run_id, step, idx, status, output, error, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (run_id, step, idx) DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output,
       error = EXCLUDED.error, updated_at = EXCLUDED.updated_at`,
  ),
  // $1 id $2 fence $3 owner: on PostgreSQL the attempt row is locked, so the lease cannot be taken over until commit
  holdsLease: sql('storeHoldsLease', {
    sqlite: `SELECT 1 AS held FROM steps WHERE id = $1 AND fence = $2 AND owner = $3 AND attempt_status = 'running'`,
    pg: `SELECT 1 AS held FROM steps WHERE id = $1 AND fence = $2 AND owner = $3 AND attempt_status = 'running' FOR SHARE`,
  }),
  // $1 id
  runTraceparent: sql('storeRunTraceparent', `SELECT traceparent FROM runs WHERE id = $1`),
  // $1 now: attempts queued per pipeline (ready or delayed, not held by a paused run) and the availability time of the
  // oldest ready one, from the partial index of steps whose attempt is queued (steps_queue) and each one's run by
  // primary key (a queued attempt is always a step's live one)
  queueStats: sql(
    'storeQueueStats',
    `SELECT r.pipeline AS pipeline, count(*)::integer AS depth, min(CASE WHEN s.available_at <= $1 THEN s.available_at END) AS oldest_ready_at
     FROM steps s JOIN runs r ON r.id = s.run_id WHERE s.attempt_status = 'queued' GROUP BY r.pipeline`,
  ),
  // $1 limit
  deadLetters: sql('storeDeadLetters', `SELECT * FROM runs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT $1`),
};

/** A row of `logs`. */
type LogRow = { run_id: string; step: string; attempt: number; stream: string; line: string; at: number };

/** The log lines of a run (of one step of it when `step` is given), in the order written. */
export function* listLogs(runId: string, step?: string): Rule<LogLine[]> {
  const rows = step === undefined ? yield* all<LogRow>(SHARED.logs, [runId]) : yield* all<LogRow>(SHARED.stepLogs, [runId, step]);
  return rows.map((r) => ({ runId: r.run_id, step: r.step, attempt: r.attempt, stream: r.stream, line: r.line, at: r.at }));
}

/** A value as a JSON column parameter (PostgreSQL encodes what jsonb refuses, see postgres/pg-json.ts). */
type Json = (value: unknown) => string;

/** Stores the pipeline; a new version is created only when its hash differs from the latest. */
export function* savePipeline(json: Json, pipeline: Pipeline, hash: string, source: PipelineSource): Rule<StoredPipeline> {
  // Two processes saving the same pipeline at once must not both take the next version number.
  yield* lockKey(`pipeline:${pipeline.name}`);
  const latest = yield* get<PipelineRow>(SHARED.latestPipeline, [pipeline.name]);
  if (latest && latest.hash === hash) return toStoredPipeline(latest);
  const row: PipelineRow = {
    name: pipeline.name,
    version: (latest?.version ?? 0) + 1,
    hash,
    definition: json(pipeline),
    source: source.text ?? null,
    source_file: source.file ?? null,
    created_at: Date.now(),
  };
  yield* run(SHARED.insertPipeline, [row.name, row.version, row.hash, row.definition, row.source, row.source_file, row.created_at]);
  return toStoredPipeline(row);
}

/**
 * Takes one request (and `tokens` estimated tokens) from the shared per-minute budget of `key`; returns 0 when
 * granted, else the milliseconds until the budget renews. Run in a write transaction.
 */
export function* takeRate(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Rule<number> {
  const window = Math.floor(now / 60_000);
  // Workers of every process take from one budget: one taker per key at a time.
  yield* lockKey(`rate:${key}`);
  const used = (yield* get<{ requests: number; tokens: number }>(SHARED.rateWindow, [key, window])) ?? { requests: 0, tokens: 0 };
  const overRequests = limits.rpm !== undefined && used.requests + 1 > limits.rpm;
  // A request larger than the whole token budget goes alone into an empty window rather than never.
  const overTokens = limits.tpm !== undefined && used.tokens > 0 && used.tokens + tokens > limits.tpm;
  if (overRequests || overTokens) return (window + 1) * 60_000 - now;
  yield* run(SHARED.takeRate, [key, window, tokens]);
  if (used.requests === 0) yield* run(SHARED.pruneRates, [window - 5]);
  return 0;
}

/** The per-item results recorded for a step, by index. */
export function* loadStepItems(runId: string, step: string): Rule<StepItem[]> {
  const rows = yield* all<{ idx: number; status: StepItem['status']; output: string | null; error: string | null }>(SHARED.stepItems, [runId, step]);
  return rows.map((r) => ({
    index: r.idx,
    status: r.status,
    ...(r.output === null ? {} : { output: JSON.parse(r.output) as unknown }),
    ...(r.error === null ? {} : { error: JSON.parse(r.error) as StepItem['error'] }),
  }));
}

/** Records per-item results, in a write transaction; LEASE_LOST unless `lease` still holds the step's attempt. */
export function* saveStepItems(json: Json, lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Rule<void> {
  if (!(yield* get(SHARED.holdsLease, [lease.attemptId, lease.fence, lease.owner]))) {
    throw new SluiceError('LEASE_LOST', `attempt ${lease.attemptId} of step ${step} no longer holds its lease; its item results are not recorded`);
  }
  for (const item of items) {
    const output = item.output === undefined ? null : json(item.output);
    const error = item.error === undefined ? null : json(item.error);
    yield* run(SHARED.putStepItem, [runId, step, item.index, item.status, output, error, now]);
  }
}

/** Compiled pipeline versions of one store: each read and compiled once (a stored version never changes). */
export class CompiledPipelines {
  private readonly compiled = new Map<string, CompiledPipeline>();

  /** The compiled definition of pipeline `name` at `version`; PIPELINE_NOT_FOUND when it is not stored. */
  *get(name: string, version: number): Rule<CompiledPipeline> {
    const key = `${name}@${version}`;
    let c = this.compiled.get(key);
    if (!c) {
      const row = yield* get<PipelineRow>(SHARED.pipeline, [name, version]);
      if (!row) throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${name} version ${version} is not stored`);
      c = compilePipeline(JSON.parse(row.definition) as Pipeline);
      this.compiled.set(key, c);
    }
    return c;
  }
}
