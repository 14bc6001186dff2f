import { SqliteCronSlots } from '../cron/cron-slots.js';
import { SqlitePruner } from '../retention/sqlite-prune.js';
import type { PruneRequest, PruneResult } from '../retention/prune.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { toStoreError } from '../store-errors.js';
import { SluiceError, type ErrorRecord } from '../../core/errors.js';
import type { Pipeline } from '../../core/model.js';
import type { StepItem } from '../../core/step-results.js';
import { initiallyReady, planRun } from '../../core/scheduler.js';
import { newRunId } from '../ids.js';
import type { CacheParts, FileHashes } from '../../core/cache-key.js';
import type {
  AttemptLease,
  CacheHit,
  AttemptRecord,
  AttemptResult,
  ClaimBatch,
  ClaimRequest,
  ClaimedAttempt,
  CompletionBatch,
  CreateRunRequest,
  CreatedRun,
  CreatedRuns,
  EventFilter,
  GateDecisionRecord,
  HumanDecision,
  LogLine,
  PipelineSource,
  ReapResult,
  RunAction,
  RunEvent,
  RunFilter,
  RunRecord,
  StepRecord,
  Store,
  StoredPipeline,
  TransitionResult,
  ApiToken,
  NewApiToken,
  PipelineStats,
  SeriesOptions,
  DataRecord,
  DatasetRecord,
  NewDataRecord,
  RecordPage,
} from '../store.js';
import { checkSameRequest, IDEMPOTENCY_WINDOW_MS, runRequestHash } from '../idempotency.js';
import { migrations } from './migrations/index.js';
import {
  parseJson,
  toAttemptRecord,
  toJson,
  toRunEvents,
  toRunRecord,
  toStepRecord,
  toStoredPipeline,
  type AttemptRow,
  type EventRow,
  type PipelineRow,
  type RunRow,
  type StepRow,
} from '../rows.js';
import { SqliteOperations } from './operations.js';
import { SqliteDatasets } from './datasets.js';
import { SqliteAttributeValues } from './attribute-values.js';
import { SqliteEvals } from './evals.js';
import { listRunsStatement } from './run-list.js';
import { RUN_TRACE_SQL } from './run-traces.js';
import { QUEUE_STATS_SQL } from './queue-stats.js';
import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../evals.js';
import type { AttributeSummary, AttributeValue, AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../attributes.js';
import { RunTransitions } from './run-transitions.js';
import { SQL } from './store-sql.js';
import { compilePipeline, type CompiledPipeline } from '../ledger/ledger-tx.js';
import { completeSupervised, controlRun, endChild, recordFailure, requeueExpired, rollbackRun } from '../ledger/outcomes.js';
import { decide, listDecisions, recordDecision } from '../ledger/supervision.js';
import { AttemptBatches, isPlainOutcome, type FinishedAttempt, type FinishedStep } from './attempt-batches.js';
import { excessKeyedClaims, runConcurrencyKeys } from '../concurrency-keys.js';

const HEADER_CACHE_SIZE = 50_000;

interface RunHeader {
  id: string;
  pipeline: string;
  version: number;
  /** JSON text: parsed per claim so that no two attempts share (and could mutate) one object. */
  input: string;
  /** The run whose `pipeline` step started this one. */
  parentRunId: string | null;
}


export interface SqliteStoreOptions {
  /** `:memory:` or a file path; parent folders are created. */
  path: string;
  /** Milliseconds to wait for another process's write lock. Default: 5 s. */
  busyTimeoutMs?: number;
}

/** The embedded backend: one SQLite file in WAL mode with synchronous=NORMAL. */
export class SqliteStore implements Store {
  readonly capabilities = { listenNotify: false, skipLocked: false, concurrentWriters: false };
  readonly url: string;
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly compiledCache = new Map<string, CompiledPipeline>();
  /** Fields of a run that never change after creation, so hot paths need not read the row again. */
  private readonly headers = new Map<string, RunHeader>();
  private runTransitions: RunTransitions | undefined;
  private attemptBatches: AttemptBatches | undefined;
  /** Server features: tokens, trigger slots, stats (operations.ts). */
  private readonly ops: SqliteOperations;
  /** Datasets and records (datasets.ts). */
  private readonly datasets: SqliteDatasets;
  /** Derived values of attribute pipelines (attribute-values.ts). */
  private readonly attributeValues: SqliteAttributeValues;
  /** Eval cases of pipelines (evals.ts). */
  private readonly evals: SqliteEvals;

  private get batches(): AttemptBatches {
    if (!this.attemptBatches) this.attemptBatches = new AttemptBatches(this.db);
    return this.attemptBatches;
  }

  private get transitions(): RunTransitions {
    if (!this.runTransitions) throw new SluiceError('STORE_ERROR', 'the store is not migrated yet: call migrate() first');
    return this.runTransitions;
  }

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.url = `sqlite:${options.path}`;
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.db.pragma('foreign_keys = ON');
    for (const extra of (process.env['SLUICE_SQLITE_PRAGMAS'] ?? '').split(';').filter(Boolean)) this.db.pragma(extra);
    this.ops = new SqliteOperations(this.db, (fn) => this.write(fn));
    this.datasets = new SqliteDatasets(this.db, (fn) => this.write(fn));
    this.attributeValues = new SqliteAttributeValues(this.db, (fn) => this.write(fn));
    this.evals = new SqliteEvals(this.db, (fn) => this.write(fn));
  }

  async listEvals(pipeline: string): Promise<EvalCase[]> {
    return this.evals.listEvals(pipeline);
  }

  async replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]> {
    return this.evals.replaceEvals(pipeline, cases, now);
  }

  async putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase> {
    return this.evals.putRecordEval(pipeline, recordEval, now);
  }

  async updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined> {
    return this.evals.updateEval(pipeline, id, patch, now);
  }

  async saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void> {
    this.evals.saveEvalResults(pipeline, results, now);
  }

  async evalSummary(pipeline: string): Promise<EvalSummary> {
    return this.evals.evalSummary(pipeline);
  }

  async listEvalPipelines(): Promise<string[]> {
    return this.evals.listEvalPipelines();
  }

  async loadAttributeWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]> {
    return this.attributeValues.loadWork(dataset, field, derivedFields, selection);
  }

  async saveAttributeValues(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged?: Array<{ recordId: string; sourceRev: number }>): Promise<string[]> {
    return this.attributeValues.save(dataset, field, pipeline, values, now, unchanged);
  }

  async getAttributeValues(dataset: string, recordId: string): Promise<Record<string, AttributeValue>> {
    return this.attributeValues.recordValues(dataset, recordId);
  }

  async listAttributeValues(dataset: string, recordIds: string[]): Promise<Map<string, Record<string, AttributeValue>>> {
    return this.attributeValues.manyValues(dataset, recordIds);
  }

  async overrideAttributeValue(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): Promise<AttributeValue> {
    return this.attributeValues.override(dataset, recordId, field, override, now);
  }

  async approveAttributeValue(dataset: string, recordId: string, field: string, note: string | undefined, now: number): Promise<AttributeValue> {
    return this.attributeValues.approve(dataset, recordId, field, note, now);
  }

  async attributeSummary(dataset: string, field: string): Promise<AttributeSummary> {
    return this.attributeValues.summary(dataset, field);
  }

  async putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord> {
    return this.datasets.putDataset(name, options, now);
  }

  async getDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.datasets.getDataset(name);
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    return this.datasets.listDatasets();
  }

  async putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void> {
    this.datasets.putRecords(dataset, records, now);
  }

  async getRecord(dataset: string, id: string): Promise<DataRecord | undefined> {
    return this.datasets.getRecord(dataset, id);
  }

  async deleteRecord(dataset: string, id: string): Promise<boolean> {
    return this.datasets.deleteRecord(dataset, id);
  }

  async listRecords(dataset: string, page?: RecordPage): Promise<DataRecord[]> {
    return this.datasets.listRecords(dataset, page);
  }

  async countRecords(dataset: string): Promise<number> {
    return this.datasets.countRecords(dataset);
  }

  async latestEventId(): Promise<number> {
    return this.ops.latestEventId();
  }

  async queueDepth(): Promise<number> {
    return this.ops.queueDepth();
  }

  async pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return this.ops.pipelineStats(pipeline, since, series);
  }

  async createToken(token: NewApiToken, now: number): Promise<ApiToken> {
    return this.ops.createToken(token, now);
  }

  async findToken(hash: string): Promise<ApiToken | undefined> {
    return this.ops.findToken(hash);
  }

  async listTokens(): Promise<ApiToken[]> {
    return this.ops.listTokens();
  }

  async revokeToken(id: number, now: number): Promise<ApiToken | undefined> {
    return this.ops.revokeToken(id, now);
  }

  async countTokens(): Promise<number> {
    return this.ops.countTokens();
  }

  async claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean> {
    return this.ops.claimTriggerSlot(pipeline, slot, now);
  }

  async claimCronSlot(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean> {
    return new SqliteCronSlots(this.db, (fn) => this.write(fn)).claim(pipeline, trigger, slot, now);
  }

  async lastCronSlot(pipeline: string, trigger: string): Promise<number | undefined> {
    return new SqliteCronSlots(this.db, (fn) => this.write(fn)).last(pipeline, trigger);
  }

  async pruneRuns(request: PruneRequest): Promise<PruneResult> {
    return new SqlitePruner(this.db, (fn) => this.write(fn)).prune(request);
  }

  /** The immutable fields of a run, cached. */
  private header(id: string): RunHeader {
    let h = this.headers.get(id);
    if (!h) {
      const row = this.stmt('runHeader').get({ id }) as Pick<RunRow, 'id' | 'pipeline' | 'version' | 'input' | 'parent_run_id'> | undefined;
      if (!row) throw new SluiceError('RUN_NOT_FOUND', `no run ${id}`);
      h = this.remember(row);
    }
    return h;
  }

  private remember(row: Pick<RunRow, 'id' | 'pipeline' | 'version' | 'input' | 'parent_run_id'>): RunHeader {
    if (this.headers.size >= HEADER_CACHE_SIZE) this.headers.clear();
    const h: RunHeader = { id: row.id, pipeline: row.pipeline, version: row.version, input: row.input, parentRunId: row.parent_run_id ?? null };
    this.headers.set(row.id, h);
    return h;
  }

  private stmt(key: keyof typeof SQL): Database.Statement {
    let s = this.stmts.get(key);
    if (!s) {
      s = this.db.prepare(SQL[key]);
      this.stmts.set(key, s);
    }
    return s;
  }

  /** Runs `fn` in a write transaction taken at once (BEGIN IMMEDIATE), so concurrent writers queue instead of failing. */
  private write<T>(fn: () => T): T {
    try {
      return this.db
        .transaction(() => {
          const result = fn();
          this.runTransitions?.flushEvents();
          return result;
        })
        .immediate();
    } catch (err) {
      this.runTransitions?.discardEvents();
      // A full disk or a read-only file gets its stable code (STORE_FULL, STORE_READONLY) and the path.
      throw toStoreError(err, this.url);
    }
  }

  async migrate(): Promise<void> {
    this.write(() => {
      this.db.exec(`CREATE TABLE IF NOT EXISTS sluice_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
      const done = new Set((this.db.prepare('SELECT id FROM sluice_migrations').all() as Array<{ id: number }>).map((r) => r.id));
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO sluice_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, Date.now());
      }
    });
    this.runTransitions = new RunTransitions(this.db, (name, version) => this.compiled(name, version));
    this.runTransitions.onRunEnded = (out, runId, status, at) => this.transitions.run(endChild(this.transitions, runId, status, at, out));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private compiled(name: string, version: number): CompiledPipeline {
    const key = `${name}@${version}`;
    let c = this.compiledCache.get(key);
    if (!c) {
      const row = this.stmt('pipeline').get({ name, version }) as PipelineRow | undefined;
      if (!row) throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${name} version ${version} is not stored`);
      c = compilePipeline(JSON.parse(row.definition) as Pipeline);
      this.compiledCache.set(key, c);
    }
    return c;
  }

  async savePipeline(pipeline: Pipeline, hash: string, source: PipelineSource = {}): Promise<StoredPipeline> {
    return this.write(() => {
      const latest = this.stmt('latestPipeline').get({ name: pipeline.name }) as PipelineRow | undefined;
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
      this.stmt('insertPipeline').run(row);
      return toStoredPipeline(row);
    });
  }

  async getPipeline(name: string, version?: number): Promise<StoredPipeline | undefined> {
    const row = (version === undefined ? this.stmt('latestPipeline').get({ name }) : this.stmt('pipeline').get({ name, version })) as
      | PipelineRow
      | undefined;
    return row ? toStoredPipeline(row) : undefined;
  }

  async listPipelines(): Promise<StoredPipeline[]> {
    return (this.stmt('latestPipelines').all() as PipelineRow[]).map(toStoredPipeline);
  }

  async listPipelineVersions(name: string): Promise<StoredPipeline[]> {
    return (this.stmt('pipelineVersions').all({ name }) as PipelineRow[]).map(toStoredPipeline);
  }

  async resetPipelineCache(name: string): Promise<number> {
    return this.write(() => this.stmt('resetCache').run({ pipeline: name }).changes);
  }

  async createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns> {
    return this.write(() => {
      const runs = requests.map((req) => this.createRun(req, now));
      const claimed =
        claimNext && claimNext.limit > 0
          ? this.claimInTransaction(claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {})
          : { attempts: [], events: [] };
      return { runs, claimed };
    });
  }

  private createRun(req: CreateRunRequest, now: number): CreatedRun {
    const p = req.pipeline;
    const requestHash = req.idempotencyKey === undefined ? null : runRequestHash(req);
    if (req.idempotencyKey !== undefined) {
      const existing = this.stmt('idempotent').get({ pipeline: p.name, key: req.idempotencyKey }) as RunRow | undefined;
      if (existing && existing.created_at > now - IDEMPOTENCY_WINDOW_MS) {
        checkSameRequest(existing, req, requestHash!);
        return { run: toRunRecord(existing), created: false, events: [] };
      }
      if (existing) this.stmt('clearIdempotency').run({ id: existing.id });
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
    this.stmt('insertRun').run(row);
    const keys = runConcurrencyKeys(p.definition, req.concurrencyKeys);
    if (keys !== null) this.stmt('setRunConcurrencyKeys').run({ id: row.id, keys });
    if (requestHash !== null) this.stmt('setIdempotencyHash').run({ id: row.id, hash: requestHash });
    if (req.traceparent !== undefined) this.prepared(RUN_TRACE_SQL.set).run({ id: row.id, traceparent: req.traceparent });
    const events: RunEvent[] = [];
    const run: RunRow = { ...row, status: 'queued', failed: 0, error: null, started_at: null, finished_at: null };
    this.remember(run);
    this.transitions.emit(events, run, 'run.queued', null, now);
    for (const s of planned) {
      const queued = readyNames.has(s.name);
      const status = queued ? 'queued' : s.status;
      this.stmt('insertStep').run({ run_id: row.id, name: s.name, seq: s.seq, status, waiting_on: s.waitingOn, priority: s.priority, attempts: queued ? 1 : 0 });
      if (s.status === 'skipped') this.transitions.emit(events, run, 'step.skipped', s.name, now, { reason: 'not selected or disabled' });
    }
    for (const s of ready) {
      this.transitions.insertAttempt(run, s.name, 1, now, runAt, s.priority);
      this.transitions.emit(events, run, 'step.queued', s.name, now, { attempt: 1 });
    }
    if (run.remaining > 0) return { run: toRunRecord(run), created: true, events };
    // Nothing to run (every step skipped): the run ends at once.
    this.transitions.finishIfDone(events, run, now);
    return { run: toRunRecord(this.transitions.getRun(row.id)!), created: true, events };
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const row = this.stmt('run').get({ id }) as RunRow | undefined;
    return row ? toRunRecord(row) : undefined;
  }

  async queueStats(now: number): Promise<Array<{ pipeline: string; depth: number; oldestReadyAt: number | null }>> {
    const rows = this.prepared(QUEUE_STATS_SQL).all({ now }) as Array<{ pipeline: string; depth: number; oldest_ready_at: number | null }>;
    return rows.map((r) => ({ pipeline: r.pipeline, depth: r.depth, oldestReadyAt: r.oldest_ready_at }));
  }

  async runTraceparent(runId: string): Promise<string | null> {
    return (this.prepared(RUN_TRACE_SQL.get).get({ id: runId }) as { traceparent: string | null } | undefined)?.traceparent ?? null;
  }

  /** A statement prepared once per store. */
  private prepared(sql: string): Database.Statement {
    let statement = this.stmts.get(sql);
    if (!statement) this.stmts.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const { sql, params } = listRunsStatement(filter);
    // Eight forms of the statement at most (pipeline, status, cursor, each there or not): prepare each once.
    let statement = this.stmts.get(sql);
    if (!statement) this.stmts.set(sql, (statement = this.db.prepare(sql)));
    return (statement.all(params) as RunRow[]).map(toRunRecord);
  }

  async listSteps(runId: string): Promise<StepRecord[]> {
    return (this.stmt('steps').all({ run_id: runId }) as StepRow[]).map(toStepRecord);
  }

  async listAttempts(runId: string, step?: string): Promise<AttemptRecord[]> {
    const rows = step === undefined ? this.stmt('attempts').all({ run_id: runId }) : this.stmt('stepAttempts').all({ run_id: runId, step });
    return (rows as AttemptRow[]).map(toAttemptRecord);
  }

  async getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const row = this.stmt('step').get({ run_id: runId, name }) as StepRow | undefined;
      if (row && row.output !== null) out[name] = JSON.parse(row.output);
    }
    return out;
  }

  async listEvents(filter: EventFilter): Promise<RunEvent[]> {
    const where = ['id > @after'];
    const params: Record<string, unknown> = { after: filter.afterId ?? 0, limit: filter.limit ?? 1000 };
    if (filter.runId) {
      where.push('run_id = @run_id');
      params['run_id'] = filter.runId;
    }
    if (filter.pipeline) {
      where.push('pipeline = @pipeline');
      params['pipeline'] = filter.pipeline;
    }
    const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`;
    // A row holds at least one event past `after` (its last): `limit` rows hold enough.
    const events: RunEvent[] = [];
    for (const row of this.db.prepare(sql).all(params) as EventRow[]) {
      for (const e of toRunEvents(row)) if (e.id > (params['after'] as number)) events.push(e);
    }
    return events.slice(0, params['limit'] as number);
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    this.write(() => {
      for (const l of lines) this.stmt('insertLog').run({ run_id: l.runId, step: l.step, attempt: l.attempt, stream: l.stream, line: l.line, at: l.at });
    });
  }

  async listLogs(runId: string, step?: string): Promise<LogLine[]> {
    const rows = (step === undefined ? this.stmt('logs').all({ run_id: runId }) : this.stmt('stepLogs').all({ run_id: runId, step })) as Array<{
      run_id: string;
      step: string;
      attempt: number;
      stream: string;
      line: string;
      at: number;
    }>;
    return rows.map((r) => ({ runId: r.run_id, step: r.step, attempt: r.attempt, stream: r.stream, line: r.line, at: r.at }));
  }

  async lookupCache(pipeline: string, cacheKey: string): Promise<CacheHit | undefined> {
    const row = this.stmt('cache').get({ pipeline, key: cacheKey }) as { output: string | null; run_id: string; outputs: string | null } | undefined;
    return row ? { output: parseJson(row.output), runId: row.run_id, outputs: parseJson<FileHashes>(row.outputs) } : undefined;
  }

  async latestCacheEntry(pipeline: string, step: string): Promise<{ runId: string; parts: CacheParts | null } | undefined> {
    const row = this.stmt('latestCache').get({ pipeline, step }) as { run_id: string; parts: string | null } | undefined;
    return row ? { runId: row.run_id, parts: parseJson<CacheParts>(row.parts) } : undefined;
  }

  /** Stores a succeeded step's output under its cache key, and why a step ran or was cached. */
  private recordCache(run: RunHeader, step: string, r: AttemptResult, status: string, output: string | null, now: number): void {
    if (status === 'succeeded' && r.cacheable && r.cacheKey) {
      const parts = r.cacheParts ? JSON.stringify(r.cacheParts) : null;
      const outputs = r.cacheOutputs ? JSON.stringify(r.cacheOutputs) : null;
      this.stmt('putCache').run({ pipeline: run.pipeline, key: r.cacheKey, output, run_id: run.id, step, created_at: now, parts, outputs });
    }
    if (r.cacheExplain) this.stmt('setCacheExplain').run({ run_id: run.id, name: step, explain: JSON.stringify(r.cacheExplain) });
  }

  async claimAttempts(owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string } = {}): Promise<ClaimBatch> {
    return this.write(() => this.claimInTransaction(owner, limit, leaseMs, now, only));
  }

  private claimInTransaction(owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string }): ClaimBatch {
    const params = { owner, now, lease_until: now + leaseMs, limit };
    const claimed = only.runId === undefined ? this.stmt('claim').all(params) : this.stmt('claimForRun').all({ ...params, run_id: only.runId });
    const rows = claimed as Array<{
      id: number;
      run_id: string;
      step: string;
      number: number;
      fence: number;
      force: number;
      feedback: string | null;
      concurrency_key: string | null;
      concurrency_limit: number | null;
    }>;
    const excess = rows.some((r) => r.concurrency_key !== null) ? this.trimKeyedClaims(rows) : null;
    const kept = excess ? rows.filter((r) => !excess.has(r.id)) : rows;
    const events: RunEvent[] = [];
    const attempts: ClaimedAttempt[] = [];
    if (kept.length === 0) return { attempts, events };
    const started = kept.length > 1 ? this.batches.startClaimed(kept, now) : this.startClaimed(kept[0]!, now);
    for (const r of kept) {
      const run = this.header(r.run_id);
      if (started.delete(r.run_id)) this.transitions.emit(events, run, 'run.started', null, now);
      this.transitions.emit(events, run, 'step.started', r.step, now, { attempt: r.number });
      attempts.push({
        id: r.id,
        runId: r.run_id,
        step: r.step,
        number: r.number,
        fence: r.fence,
        pipeline: run.pipeline,
        version: run.version,
        input: JSON.parse(run.input),
        force: r.force === 1,
        leaseExpiresAt: now + leaseMs,
        ...(r.feedback === null ? {} : { feedback: JSON.parse(r.feedback) as unknown }),
      });
    }
    return { attempts, events };
  }

  /** Starts the run and step of one claimed attempt; returns the run's id when it was queued until now. */
  private startClaimed(claimed: { run_id: string; step: string }, now: number): Set<string> {
    const started = this.stmt('startRun').run({ id: claimed.run_id, now }).changes > 0;
    this.stmt('startStep').run({ run_id: claimed.run_id, name: claimed.step, now });
    return new Set(started ? [claimed.run_id] : []);
  }

  /**
   * Several attempts of one key may pass the claim's condition together: those beyond the key's limit go back
   * to the queue, untouched but for their fence. Returns their ids.
   */
  private trimKeyedClaims(rows: Array<{ id: number; concurrency_key: string | null; concurrency_limit: number | null }>): Set<number> {
    const running = (key: string) => (this.stmt('runningWithKey').get({ key }) as { n: number }).n;
    const excess = excessKeyedClaims(rows, running, (r) => r.concurrency_limit ?? 1);
    for (const id of excess) this.stmt('unclaim').run({ id });
    return excess;
  }

  async heartbeat(owner: string, attemptIds: number[], leaseMs: number, now: number): Promise<number[]> {
    const held = this.write(() => new Set((this.stmt('heartbeat').all({ owner, lease_until: now + leaseMs }) as Array<{ id: number }>).map((r) => r.id)));
    return attemptIds.filter((id) => !held.has(id));
  }

  async completeAttempts(results: AttemptResult[], now: number, claimNext?: ClaimRequest): Promise<CompletionBatch> {
    return this.write(() => {
      const batch: CompletionBatch = { accepted: [], rejected: [], events: [], queued: 0, claimed: [] };
      // One result (a chain's next step) costs fewer statements one by one.
      if (results.length > 1 && results.every(isPlainOutcome)) this.completePlain(results, now, batch);
      else {
        for (const r of results) {
          if (this.completeOne(r, now, batch.events)) batch.accepted.push(r.attemptId);
          else batch.rejected.push(r.attemptId);
        }
      }
      batch.queued = batch.events.filter((e) => e.type === 'step.queued' || e.type === 'step.retrying').length;
      if (claimNext && claimNext.limit > 0) {
        const next = this.claimInTransaction(claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {});
        batch.claimed = next.attempts;
        batch.events.push(...next.events);
      }
      return batch;
    });
  }

  /**
   * Results that only finish their steps (succeeded, cached, skipped), recorded with a few statements per batch:
   * attempts, steps and (for runs with one result in the batch) run counters are each updated by one statement,
   * then each result is settled in order as {@link completeOne} would. Finishing every attempt and step first
   * changes nothing: settling one of these touches neither running attempts nor running steps.
   */
  private completePlain(results: AttemptResult[], now: number, batch: CompletionBatch): void {
    const finished = this.batches.finishAttempts(results, now);
    const done: Array<{ r: AttemptResult; fin: FinishedAttempt; run: RunHeader; step: FinishedStep }> = [];
    const resultsOfRun = new Map<string, number>();
    let children = false;
    for (const r of results) {
      const fin = finished.get(r.attemptId);
      if (!fin) {
        batch.rejected.push(r.attemptId);
        continue;
      }
      // A result given twice is recorded once, as one by one: the second finds its attempt finished.
      finished.delete(r.attemptId);
      batch.accepted.push(r.attemptId);
      const run = this.header(fin.run_id);
      if (run.parentRunId !== null) children = true;
      resultsOfRun.set(run.id, (resultsOfRun.get(run.id) ?? 0) + 1);
      const status = r.outcome as FinishedStep['status'];
      done.push({ r, fin, run, step: { runId: run.id, step: fin.step, status, output: toJson(r.output), cacheKey: r.cacheKey ?? null } });
    }
    this.batches.finishSteps(done.map((d) => d.step), now);
    // A child run that ends settles its parent's step in between: then every run settles on its own, in order.
    const once = children ? [] : [...resultsOfRun].filter(([, n]) => n === 1).map(([id]) => id);
    const settled = this.batches.settleRuns(once, now);
    for (const { r, fin, run, step } of done) {
      this.recordCache(run, fin.step, r, step.status, step.output, now);
      this.transitions.emit(batch.events, run, `step.${step.status}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
      const counters = settled.get(run.id);
      if (!counters) {
        this.transitions.settle(batch.events, run, fin.step, now);
        continue;
      }
      this.transitions.releaseDependents(run, fin.step);
      this.transitions.afterSettle(batch.events, counters, now);
    }
  }

  private completeOne(r: AttemptResult, now: number, events: RunEvent[]): boolean {
    const status = r.outcome;
    const error = r.error ? JSON.stringify(r.error) : null;
    const usage = r.usage ? JSON.stringify(r.usage) : null;
    const fin = this.stmt('finishAttempt').get({ id: r.attemptId, fence: r.fence, owner: r.owner, status, now, processing_ms: r.processingMs, error, usage }) as
      | { run_id: string; step: string; number: number }
      | undefined;
    if (!fin) return false;
    if (status === 'failed') {
      this.transitions.run(recordFailure(this.transitions, this.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events));
      return true;
    }
    if (status === 'blocked' || status === 'rewound') {
      this.transitions.run(completeSupervised(this.transitions, this.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events));
      return true;
    }
    if (status === 'spawned') {
      this.spawnChild(this.transitions.getRun(fin.run_id)!, fin.step, fin.number, r, now, events);
      return true;
    }
    if (r.decision) this.transitions.run(recordDecision(this.transitions, this.transitions.getRun(fin.run_id)!, fin.step, fin.number, r.decision, null, now, events));
    const run = this.header(fin.run_id);
    const output = toJson(r.output);
    this.stmt('finishStep').run({ run_id: run.id, name: fin.step, status, output, cache_key: r.cacheKey ?? null, now });
    this.recordCache(run, fin.step, r, status, output, now);
    this.transitions.emit(events, run, `step.${status as 'succeeded' | 'cached' | 'skipped'}`, fin.step, now, { attempt: fin.number, duration_ms: r.processingMs });
    this.transitions.settle(events, run, fin.step, now);
    return true;
  }

  /**
   * A `pipeline` step starts its child run in the same transaction; the step stays running (holding no
   * lease) until the child ends, see {@link endChild}.
   */
  private spawnChild(run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): void {
    const request = r.spawn!;
    const child = this.stmt('latestPipeline').get({ name: request.pipeline }) as PipelineRow | undefined;
    if (!child) {
      const error = { code: 'PIPELINE_NOT_FOUND', message: `step ${step} runs pipeline ${request.pipeline}, which is not registered`, retryable: false };
      this.transitions.run(recordFailure(this.transitions, run, step, number, { ...r, outcome: 'failed', error, retryable: false }, now, events));
      return;
    }
    const traced = request.traceparent === undefined ? {} : { traceparent: request.traceparent };
    const created = this.createRun({ pipeline: toStoredPipeline(child), input: request.input, parent: { runId: run.id, step }, ...traced }, now);
    this.stmt('setStepOutput').run({ run_id: run.id, name: step, output: JSON.stringify({ child_run: created.run.id }) });
    events.push(...created.events);
  }

  async reap(now: number, isOwnerDead?: (owner: string) => boolean): Promise<ReapResult> {
    return this.write(() => {
      const result: ReapResult = { expired: 0, timedOutRuns: 0, events: [] };
      const expired = this.stmt('expiredLeases').all({ now }) as Array<{ id: number; run_id: string; step: string; number: number }>;
      if (isOwnerDead) {
        for (const { owner } of this.stmt('runningOwners').all() as Array<{ owner: string }>) {
          if (isOwnerDead(owner)) expired.push(...(this.stmt('ownerAttempts').all({ owner }) as typeof expired));
        }
      }
      const seen = new Set<number>();
      for (const a of expired) {
        if (seen.has(a.id) || this.stmt('expireAttempt').run({ id: a.id, now }).changes === 0) continue;
        seen.add(a.id);
        result.expired += 1;
        this.transitions.run(requeueExpired(this.transitions, a.run_id, a.step, now, result.events));
      }
      for (const run of this.stmt('overdueRuns').all({ now }) as RunRow[]) {
        result.timedOutRuns += 1;
        this.transitions.terminate(result.events, run, 'failed', now, { code: 'RUN_TIMEOUT', message: 'the run exceeded its timeout' });
      }
      return result;
    });
  }

  async controlRun(runId: string, action: RunAction, now: number): Promise<TransitionResult> {
    return this.write(() => {
      const events: RunEvent[] = [];
      this.transitions.run(controlRun(this.transitions, this.requireRun(runId), action, now, events));
      return { run: toRunRecord(this.transitions.getRun(runId)!), events };
    });
  }

  async rollbackRun(runId: string, step: string, now: number): Promise<TransitionResult> {
    return this.write(() => {
      const events: RunEvent[] = [];
      this.transitions.run(rollbackRun(this.transitions, this.requireRun(runId), step, now, events));
      return { run: toRunRecord(this.transitions.getRun(runId)!), events };
    });
  }

  async decideStep(runId: string, step: string, decision: HumanDecision, now: number): Promise<TransitionResult> {
    return this.write(() => {
      const events: RunEvent[] = [];
      this.transitions.run(decide(this.transitions, this.requireRun(runId), step, decision, now, events));
      return { run: toRunRecord(this.transitions.getRun(runId)!), events };
    });
  }

  async listDecisions(runId: string): Promise<GateDecisionRecord[]> {
    return this.transitions.run(listDecisions(runId));
  }

  async takeRate(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number> {
    const window = Math.floor(now / 60_000);
    return this.write(() => {
      const used = (this.stmt('rateWindow').get({ key, window }) as { requests: number; tokens: number } | undefined) ?? { requests: 0, tokens: 0 };
      const overRequests = limits.rpm !== undefined && used.requests + 1 > limits.rpm;
      // A request larger than the whole token budget goes alone into an empty window rather than never.
      const overTokens = limits.tpm !== undefined && used.tokens > 0 && used.tokens + tokens > limits.tpm;
      if (overRequests || overTokens) return (window + 1) * 60_000 - now;
      this.stmt('takeRate').run({ key, window, tokens });
      if (used.requests === 0) this.stmt('pruneRates').run({ before: window - 5 });
      return 0;
    });
  }

  async settleRate(key: string, at: number, delta: number): Promise<void> {
    this.write(() => this.stmt('settleRate').run({ key, window: Math.floor(at / 60_000), delta }));
  }

  async loadStepItems(runId: string, step: string): Promise<StepItem[]> {
    const rows = this.stmt('stepItems').all({ run_id: runId, step }) as Array<{ idx: number; status: StepItem['status']; output: string | null; error: string | null }>;
    return rows.map((r) => ({
      index: r.idx,
      status: r.status,
      ...(r.output === null ? {} : { output: JSON.parse(r.output) as unknown }),
      ...(r.error === null ? {} : { error: JSON.parse(r.error) as StepItem['error'] }),
    }));
  }

  async saveStepItems(lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void> {
    this.write(() => {
      if (!this.stmt('holdsLease').get({ id: lease.attemptId, fence: lease.fence, owner: lease.owner })) {
        throw new SluiceError('LEASE_LOST', `attempt ${lease.attemptId} of step ${step} no longer holds its lease; its item results are not recorded`);
      }
      for (const item of items) {
        const output = item.output === undefined ? null : toJson(item.output);
        const error = item.error === undefined ? null : JSON.stringify(item.error);
        this.stmt('putStepItem').run({ run_id: runId, step, idx: item.index, status: item.status, output, error, now });
      }
    });
  }

  async listDeadLetters(limit: number): Promise<RunRecord[]> {
    return (this.stmt('deadLetters').all({ limit }) as RunRow[]).map(toRunRecord);
  }

  private requireRun(runId: string): RunRow {
    const run = this.transitions.getRun(runId);
    if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${runId}`);
    return run;
  }
}

export type { ErrorRecord };
