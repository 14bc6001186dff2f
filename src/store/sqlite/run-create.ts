import { initiallyReady, planRun } from '../../core/scheduler.js';
import type { CreateRunRequest, CreatedRun, RunEvent } from '../store.js';
import { checkSameRequest, IDEMPOTENCY_WINDOW_MS, runRequestHash } from '../idempotency.js';
import { runConcurrencyKeys } from '../concurrency-keys.js';
import { newRunId } from '../ids.js';
import { toJson, toRunRecord, toStoredPipeline, type PipelineRow, type RunRow } from '../rows.js';
import { RUN_TRACE_SQL } from './run-traces.js';
import type { SqliteCtx } from './sqlite-context.js';
import type Database from 'better-sqlite3';
import type { Pipeline } from '../../core/model.js';
import type { PipelineSource, StoredPipeline } from '../store.js';
import { migrations } from './migrations/index.js';

// Run creation of the SQLite store: a run, its planned steps and first attempts.

export function createRun(c: SqliteCtx, req: CreateRunRequest, now: number): CreatedRun {
  const p = req.pipeline;
  const requestHash = req.idempotencyKey === undefined ? null : runRequestHash(req);
  if (req.idempotencyKey !== undefined) {
    const existing = c.stmt('idempotent').get({ pipeline: p.name, key: req.idempotencyKey }) as RunRow | undefined;
    if (existing && existing.created_at > now - IDEMPOTENCY_WINDOW_MS) {
      checkSameRequest(existing, req, requestHash!);
      return { run: toRunRecord(existing), created: false, events: [] };
    }
    if (existing) c.stmt('clearIdempotency').run({ id: existing.id });
  }
  const planned = planRun(p.definition, req.selection ? new Set(req.selection) : null);
  const maxParallel = req.maxParallel ?? p.definition.maxParallel;
  const ready = initiallyReady(planned).slice(0, maxParallel);
  const readyNames = new Set(ready.map((s) => s.name));
  const runAt = Math.max(req.runAt ?? now, now);
  const row = {
    id: req.id ?? newRunId(now),
    pipeline: p.name,
    version: p.version,
    input: toJson(req.input),
    priority: req.priority ?? 0,
    force: req.force ? 1 : 0,
    max_parallel: maxParallel,
    selection: req.selection ? JSON.stringify(req.selection) : null,
    idempotency_key: req.idempotencyKey ?? null,
    parent_run_id: req.parent?.runId ?? null,
    parent_step: req.parent?.step ?? null,
    remaining: planned.filter((s) => s.status === 'pending').length,
    active: ready.length,
    run_at: runAt,
    deadline_at: p.definition.timeoutMs === null ? null : runAt + p.definition.timeoutMs,
    created_at: now,
  };
  c.stmt('insertRun').run(row);
  const keys = runConcurrencyKeys(p.definition, req.concurrencyKeys);
  if (keys !== null) c.stmt('setRunConcurrencyKeys').run({ id: row.id, keys });
  if (requestHash !== null) c.stmt('setIdempotencyHash').run({ id: row.id, hash: requestHash });
  if (req.traceparent !== undefined) c.prepared(RUN_TRACE_SQL.set).run({ id: row.id, traceparent: req.traceparent });
  const events: RunEvent[] = [];
  const run: RunRow = { ...row, status: 'queued', failed: 0, error: null, started_at: null, finished_at: null };
  c.remember(run);
  c.transitions.emit(events, run, 'run.queued', null, now);
  for (const s of planned) {
    const queued = readyNames.has(s.name);
    const status = queued ? 'queued' : s.status;
    c.stmt('insertStep').run({ run_id: row.id, name: s.name, seq: s.seq, status, waiting_on: s.waitingOn, priority: s.priority, attempts: queued ? 1 : 0 });
    if (s.status === 'skipped') c.transitions.emit(events, run, 'step.skipped', s.name, now, { reason: 'not selected or disabled' });
  }
  for (const s of ready) {
    c.transitions.insertAttempt(run, s.name, 1, now, runAt, s.priority);
    c.transitions.emit(events, run, 'step.queued', s.name, now, { attempt: 1 });
  }
  if (run.remaining > 0) return { run: toRunRecord(run), created: true, events };
  // Nothing to run (every step skipped): the run ends at once.
  c.transitions.finishIfDone(events, run, now);
  return { run: toRunRecord(c.transitions.getRun(row.id)!), created: true, events };
}

/** Applies pending numbered migrations, recorded in `sluice_migrations`; call in a write transaction. */
export function applyMigrations(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS sluice_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set((db.prepare('SELECT id FROM sluice_migrations').all() as Array<{ id: number }>).map((r) => r.id));
  for (const m of migrations) {
    if (done.has(m.id)) continue;
    db.exec(m.sql);
    db.prepare('INSERT INTO sluice_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, Date.now());
  }
}

/** Stores the pipeline; a new version is created only when its hash differs from the latest. */
export function savePipeline(c: SqliteCtx, pipeline: Pipeline, hash: string, source: PipelineSource): StoredPipeline {
  return c.write(() => {
    const latest = c.stmt('latestPipeline').get({ name: pipeline.name }) as PipelineRow | undefined;
    if (latest && latest.hash === hash) return toStoredPipeline(latest);
    const row: PipelineRow = {
      name: pipeline.name,
      version: (latest?.version ?? 0) + 1,
      hash,
      definition: JSON.stringify(pipeline),
      source: source.text ?? null,
      source_file: source.file ?? null,
      created_at: Date.now(),
    };
    c.stmt('insertPipeline').run(row);
    return toStoredPipeline(row);
  });
}
