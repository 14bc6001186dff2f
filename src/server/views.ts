import { describeExplain } from '../core/cache-key.js';
import { userStack, type ErrorRecord } from '../core/errors.js';
import type { AttributeConfig } from '../core/model.js';
import type { AttributeValue } from '../store/attributes.js';
import { definitionView, usageView } from './contract-views.js';
import type { AttemptRecord, DataRecord, DatasetRecord, LogLine, RunEvent, RunRecord, StepRecord, StoredPipeline } from '../store/store.js';
import { isHeldRunAt } from '../store/flow/flow-start.js';

/**
 * JSON shapes of the HTTP API. Keys are snake_case like the request bodies and the YAML; times are epoch ms.
 */

export function pipelineView(p: StoredPipeline, withSource = false): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: p.name,
    version: p.version,
    hash: p.hash,
    description: p.definition.description,
    disabled: p.definition.disabled,
    steps: p.definition.steps.map((s) => s.name),
    triggers: p.definition.triggers,
    attribute: attributeConfigView(p.definition.attribute),
    created_at: p.createdAt,
  };
  if (withSource) {
    view['definition'] = definitionView(p.definition);
    view['source'] = p.source;
  }
  return view;
}

export function runView(r: RunRecord): Record<string, unknown> {
  return {
    id: r.id,
    pipeline: r.pipeline,
    version: r.version,
    status: r.status,
    input: r.input,
    priority: r.priority,
    force: r.force,
    max_parallel: r.maxParallel,
    // The steps the run was asked for (with their dependencies), or null for all; `steps` is the step list of GET /api/runs/:id.
    selected_steps: r.selection,
    parent_run_id: r.parentRunId,
    parent_step: r.parentStep,
    idempotency_key: r.idempotencyKey,
    error: errorView(r.error),
    // A run held by a singleton queue has no start time until it is released (stored as a far-future sentinel).
    run_at: isHeldRunAt(r.runAt) ? null : r.runAt,
    deadline_at: r.deadlineAt,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
  };
}

export function stepView(s: StepRecord, attempts: AttemptRecord[]): Record<string, unknown> {
  return {
    name: s.name,
    status: s.status,
    attempts: s.attempts,
    output: s.output,
    error: errorView(s.error),
    // Why the step ran or was cached (null for steps whose cache is off, or not settled yet), and in words.
    cache_explain: s.cacheExplain,
    cache_reason: s.cacheExplain ? describeExplain(s.cacheExplain) : null,
    started_at: s.startedAt,
    finished_at: s.finishedAt,
    history: attempts.filter((a) => a.step === s.name).map(attemptView),
  };
}

export function attemptView(a: AttemptRecord): Record<string, unknown> {
  return {
    number: a.number,
    status: a.status,
    queued_at: a.queuedAt,
    started_at: a.startedAt,
    finished_at: a.finishedAt,
    processing_time_ms: a.processingMs,
    error: errorView(a.error),
    usage: usageView(a.usage),
  };
}

/** A stored error as users see it: the engine's stack frames (kept by rows written before they were dropped) are not shown. */
export function errorView(e: ErrorRecord | null): ErrorRecord | null {
  if (e === null || e.stack === undefined) return e;
  const { stack, ...rest } = e;
  const user = userStack(stack);
  return user === undefined ? rest : { ...rest, stack: user };
}

export function eventView(e: RunEvent): Record<string, unknown> {
  return { id: e.id, type: e.type, run_id: e.runId, pipeline: e.pipeline, step: e.step, data: e.data, at: e.at };
}

export function logView(l: LogLine): Record<string, unknown> {
  return { step: l.step, attempt: l.attempt, stream: l.stream, line: l.line, at: l.at };
}

export function datasetView(d: DatasetRecord, records?: number): Record<string, unknown> {
  const view: Record<string, unknown> = { name: d.name, ingest_pipeline: d.ingestPipeline ?? null, created_at: d.createdAt };
  if (records !== undefined) view['records'] = records;
  return view;
}

/** A record; with `values`, its derived values by field (an empty object when it has none). */
export function recordView(r: DataRecord, values?: Record<string, AttributeValue>): Record<string, unknown> {
  const view: Record<string, unknown> = { id: r.id, data: r.data, created_at: r.createdAt, updated_at: r.updatedAt };
  if (values !== undefined) view['attributes'] = Object.fromEntries(Object.entries(values).map(([field, v]) => [field, attributeValueView(v)]));
  return view;
}

export function attributeValueView(v: AttributeValue): Record<string, unknown> {
  return {
    value: v.value,
    confidence: v.confidence,
    justification: v.justification,
    input_hash: v.inputHash,
    pipeline: v.pipeline,
    pipeline_version: v.pipelineVersion,
    run_id: v.runId,
    status: v.status,
    note: v.note,
    updated_at: v.updatedAt,
  };
}

function attributeConfigView(a: AttributeConfig | undefined): Record<string, unknown> | null {
  if (!a) return null;
  return {
    dataset: a.dataset,
    target: a.target,
    fields: a.fields,
    batch_size: a.batchSize,
    on_record_failure: a.onRecordFailure,
    concurrency: a.concurrency,
    steps: a.steps.map((s) => s.name),
  };
}
