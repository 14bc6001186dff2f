import type { AttemptRecord, DataRecord, DatasetRecord, LogLine, RunEvent, RunRecord, StepRecord, StoredPipeline } from '../store/store.js';

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
    created_at: p.createdAt,
  };
  if (withSource) {
    view['definition'] = p.definition;
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
    steps: r.selection,
    idempotency_key: r.idempotencyKey,
    error: r.error,
    run_at: r.runAt,
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
    error: s.error,
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
    error: a.error,
    usage: a.usage,
  };
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

export function recordView(r: DataRecord): Record<string, unknown> {
  return { id: r.id, data: r.data, created_at: r.createdAt, updated_at: r.updatedAt };
}
