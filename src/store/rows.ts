import type { CacheExplain } from '../core/cache-key.js';
import type { ErrorRecord } from '../core/errors.js';
import type { Pipeline, RunStatus, StepStatus } from '../core/model.js';
import type { StepUsage } from '../core/step-results.js';
import type { GateDecisionRecord } from './store.js';
import type { AttemptRecord, AttemptStatus, EventType, RunEvent, RunRecord, StepRecord, StoredPipeline } from './store.js';

/** Row shapes as SQLite returns them; they never leave src/store. */
export interface PipelineRow {
  name: string;
  version: number;
  hash: string;
  definition: string;
  source: string | null;
  source_file: string | null;
  created_at: number;
}

export interface RunRow {
  id: string;
  pipeline: string;
  version: number;
  status: RunStatus;
  input: string;
  priority: number;
  force: number;
  max_parallel: number;
  selection: string | null;
  idempotency_key: string | null;
  /** sha256 of the request that used the key (migration 9); read by the idempotency check only. */
  idempotency_hash?: string | null;
  parent_run_id?: string | null;
  parent_step?: string | null;
  remaining: number;
  active: number;
  failed: number;
  error: string | null;
  run_at: number;
  deadline_at: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface StepRow {
  run_id: string;
  name: string;
  seq: number;
  status: StepStatus;
  waiting_on: number;
  priority: number;
  attempts: number;
  failures: number;
  output: string | null;
  error: string | null;
  cache_key: string | null;
  /** Absent in rows read by statements that name their columns. */
  cache_explain?: string | null;
  force: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface AttemptRow {
  id: number;
  run_id: string;
  step: string;
  number: number;
  status: AttemptStatus;
  owner: string | null;
  fence: number;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  processing_ms: number | null;
  error: string | null;
  usage: string | null;
}

/** An attempt a claim leased, as both drivers' claim statements return it. */
export interface ClaimedAttemptRow {
  id: number;
  run_id: string;
  step: string;
  number: number;
  fence: number;
  force: number;
  feedback: string | null;
  /** The step's concurrency key and limit, when it has one (the claim then checks the limit). */
  concurrency_key: string | null;
  concurrency_limit: number | null;
  /** Set (true, or 1 on SQLite) when the attempt is the wake-up of a sleep whose time has come: `step.woken` first. */
  woke?: boolean | number;
}

export interface EventRow {
  id: number;
  run_id: string;
  pipeline: string;
  step: string | null;
  type: EventType;
  data: string | null;
  at: number;
  /** Later events packed into this row (SQLite migration 7, PostgreSQL 19), JSON array of [step, type, data, at]; `id` is the last one's. */
  more?: string | null;
}

export function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** JSON text of a value; undefined is stored as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}

export function toStoredPipeline(row: PipelineRow): StoredPipeline {
  return {
    name: row.name,
    version: row.version,
    hash: row.hash,
    definition: JSON.parse(row.definition) as Pipeline,
    source: row.source,
    sourceFile: row.source_file,
    createdAt: row.created_at,
  };
}

export function toRunRecord(row: RunRow): RunRecord {
  return {
    id: row.id,
    pipeline: row.pipeline,
    version: row.version,
    status: row.status,
    input: JSON.parse(row.input),
    priority: row.priority,
    force: row.force === 1,
    maxParallel: row.max_parallel,
    selection: parseJson<string[]>(row.selection),
    idempotencyKey: row.idempotency_key,
    parentRunId: row.parent_run_id ?? null,
    parentStep: row.parent_step ?? null,
    error: parseJson<ErrorRecord>(row.error),
    runAt: row.run_at,
    deadlineAt: row.deadline_at,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function toStepRecord(row: StepRow): StepRecord {
  return {
    runId: row.run_id,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    output: parseJson(row.output),
    error: parseJson<ErrorRecord>(row.error),
    cacheKey: row.cache_key,
    cacheExplain: parseJson<CacheExplain>(row.cache_explain ?? null),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function toAttemptRecord(row: AttemptRow): AttemptRecord {
  return {
    id: row.id,
    runId: row.run_id,
    step: row.step,
    number: row.number,
    status: row.status,
    owner: row.owner,
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    processingMs: row.processing_ms,
    error: parseJson<ErrorRecord>(row.error),
    usage: parseJson<StepUsage>(row.usage),
  };
}

/** A row holding one event. */
export function toRunEvent(row: EventRow): RunEvent {
  return { id: row.id, runId: row.run_id, pipeline: row.pipeline, step: row.step, type: row.type, data: parseJson<Record<string, unknown>>(row.data), at: row.at };
}

/** A later event of a packed row: [step, type, data, at]. */
export type PackedEvent = [string | null, EventType, Record<string, unknown> | null, number];

/** The events of one row, in id order (one, or several packed ones). */
export function toRunEvents(row: EventRow): RunEvent[] {
  if (!row.more) return [toRunEvent(row)];
  const more = JSON.parse(row.more) as PackedEvent[];
  const first = row.id - more.length;
  const events = [{ ...toRunEvent(row), id: first }];
  more.forEach(([step, type, data, at], i) => events.push({ id: first + 1 + i, runId: row.run_id, pipeline: row.pipeline, step, type, data, at }));
  return events;
}

/** A gate_decisions row (both backends store the JSON columns as text). */
export interface DecisionRow {
  id: number;
  run_id: string;
  step: string;
  attempt: number;
  decision: GateDecisionRecord['decision'];
  validations: string;
  rules: string;
  retry_step: string | null;
  reason: string | null;
  budget_left: number | null;
  at: number;
  kind: GateDecisionRecord['kind'];
  comment: string | null;
  decided_by: string | null;
}

export function toGateDecisionRecord(r: DecisionRow): GateDecisionRecord {
  return {
    id: Number(r.id),
    runId: r.run_id,
    step: r.step,
    attempt: r.attempt,
    decision: r.decision,
    validations: JSON.parse(r.validations) as unknown[],
    rules: JSON.parse(r.rules) as unknown[],
    ...(r.retry_step ? { retryStep: r.retry_step } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    kind: r.kind,
    ...(r.comment ? { comment: r.comment } : {}),
    ...(r.decided_by ? { by: r.decided_by } : {}),
    budgetLeft: r.budget_left,
    at: Number(r.at),
  };
}
