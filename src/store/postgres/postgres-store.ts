import { PgCronSlots } from '../cron/cron-slots.js';
import { pgPrune } from '../retention/pg-prune.js';
import type { PruneRequest, PruneResult } from '../retention/prune.js';
import type pg from 'pg';
import type { CacheParts, FileHashes } from '../../core/cache-key.js';
import { SluiceError } from '../../core/errors.js';
import type { Pipeline } from '../../core/model.js';
import {
  parseJson,
  toAttemptRecord,
  toRunEvent,
  toRunRecord,
  toStepRecord,
  toStoredPipeline,
  type AttemptRow,
  type EventRow,
  type PipelineRow,
  type RunRow,
  type StepRow,
} from '../rows.js';
import { compilePipeline, type CompiledPipeline } from '../ledger/ledger-tx.js';
import type {
  CacheHit,
  AttemptRecord,
  AttemptResult,
  ClaimBatch,
  ClaimRequest,
  CompletionBatch,
  CreateRunRequest,
  CreatedRun,
  CreatedRuns,
  ApiToken,
  AttemptLease,
  EventFilter,
  NewApiToken,
  PipelineStats,
  SeriesOptions,
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
} from '../store.js';
import type { DataRecord, DatasetRecord, NewDataRecord, RecordPage } from '../store.js';
import type { StepItem } from '../../core/step-results.js';
import { migrations } from './migrations/index.js';
import { createPool, transaction, type RetryPolicy, type TransactionOptions } from './pg-pool.js';
import { PgDatasets } from './pg-datasets.js';
import { PgAttributeValues } from './pg-attribute-values.js';
import { PgEvals } from './pg-evals.js';
import type { EvalCase, EvalPatch, EvalResult, EvalSummary, NewEvalCase } from '../evals.js';
import type { AttributeSummary, AttributeValue, AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../attributes.js';
import { PgOperations, saveStepItemsIn, takeRateIn, toStepItem, type StepItemRow } from './pg-operations.js';
import { PgRunTransitions } from './pg-run-transitions.js';
import { listRunsStatement } from './pg-run-list.js';
import { PG_RUN_TRACE_SQL } from './pg-run-traces.js';
import { PG_QUEUE_STATS_SQL } from './pg-queue-stats.js';
import { controlRun, endChild, requeueExpired, rollbackRun } from '../ledger/outcomes.js';
import { decide, listDecisions } from '../ledger/supervision.js';
import { claimAlone, claimIn, claimKeyed, completeBatch, createRunIn, createRunsAlone, insertNewRows, NewRows, planPlainRuns, type RunHeader, type Tx } from './pg-attempts.js';
import { MIGRATION_LOCK_KEY, REAPER_LOCK_KEY, SQL, sql, type SqlKey } from './pg-store-sql.js';
import { WakeupListener } from './pg-wakeups.js';
import { LeaderElection } from './pg-leader.js';
import { PostgresArtifactStore } from '../../artifacts/postgres-artifact-store.js';
import { pgJson, toPgText } from './pg-json.js';
import { storeFailureOf, toStoreError } from '../store-errors.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Connections of this process. Default: 10. */
  poolSize?: number;
  /** How long a lost connection or a deadlock is retried before a call fails. Default: 60 s. */
  retryForMs?: number;
  /** Called with connection errors that are being retried. Default: ignored. */
  onError?: (err: unknown) => void;
}

/**
 * The scale-out backend: PostgreSQL with many worker processes. Same tables and rules as SqliteStore; claims use
 * `FOR UPDATE SKIP LOCKED`, every transaction that changes a run's counters locks the run row first, and
 * transactions that make attempts available NOTIFY the `sluice_wakeup` channel. Event ids come from a sequence:
 * with concurrent writers an event may commit after one with a higher id, so a reader paging by `afterId`
 * should re-read a short window behind the last id it saw.
 */
export class PostgresStore implements Store {
  readonly capabilities = { listenNotify: true, skipLocked: true, concurrentWriters: true };
  readonly url: string;
  private readonly connectionString: string;
  private readonly pool: pg.Pool;
  private readonly compiledCache = new Map<string, CompiledPipeline>();
  private readonly listeners = new Set<WakeupListener | LeaderElection>();
  private readonly retryForMs: number;
  private readonly onError: (err: unknown) => void;
  private closed = false;
  /** Server features: tokens, trigger slots, stats (pg-operations.ts). */
  private readonly ops = new PgOperations((text, values) => transaction(this.pool, this.retryPolicy(), (c) => c.query(text, values)));
  /** Datasets and records (pg-datasets.ts). */
  private readonly datasets = new PgDatasets((fn) => transaction(this.pool, this.retryPolicy(), fn));
  /** Derived values of attribute pipelines (pg-attribute-values.ts). */
  private readonly attributeValues = new PgAttributeValues((fn) => transaction(this.pool, this.retryPolicy(), fn));
  /** Eval cases of pipelines (pg-evals.ts). */
  private readonly evals = new PgEvals((fn) => transaction(this.pool, this.retryPolicy(), fn));

  listEvals(pipeline: string): Promise<EvalCase[]> {
    return this.evals.listEvals(pipeline);
  }

  replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]> {
    return this.evals.replaceEvals(pipeline, cases, now);
  }

  putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase> {
    return this.evals.putRecordEval(pipeline, recordEval, now);
  }

  updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined> {
    return this.evals.updateEval(pipeline, id, patch, now);
  }

  saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void> {
    return this.evals.saveEvalResults(pipeline, results, now);
  }

  evalSummary(pipeline: string): Promise<EvalSummary> {
    return this.evals.evalSummary(pipeline);
  }

  listEvalPipelines(): Promise<string[]> {
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

  constructor(options: PostgresStoreOptions) {
    this.connectionString = options.url;
    const display = new URL(options.url);
    if (display.password) display.password = '***';
    this.url = display.toString();
    this.retryForMs = options.retryForMs ?? 60_000;
    this.onError = options.onError ?? (() => undefined);
    this.pool = createPool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      onError: (err) => {
        this.sawError(err);
        this.onError(err);
      },
    });
  }

  /** Artifacts in this database (tables `artifacts` and `artifact_chunks`; src/artifacts/postgres-artifact-store.ts). */
  artifactStore(): PostgresArtifactStore {
    return new PostgresArtifactStore({ pool: this.pool, retry: this.retryPolicy(), location: this.url });
  }

  private retryPolicy(): RetryPolicy {
    return { retryForMs: this.retryForMs, onRetry: this.onRetry, onSuccess: this.onSuccess };
  }

  /** When a lost or refused connection was last seen with no success since; null while the server answers. */
  private unreachableSince: number | null = null;
  private readonly onRetry = (err: unknown): void => {
    this.sawError(err);
    this.onError(err);
  };
  private readonly onSuccess = (): void => {
    this.unreachableSince = null;
  };

  private sawError(err: unknown): void {
    if (storeFailureOf(err) === 'STORE_UNAVAILABLE') this.unreachableSince ??= Date.now();
  }

  /** Whether the last contact with the server failed for want of a connection, with no success since. */
  isUnreachable(): boolean {
    return this.unreachableSince !== null;
  }

  /** Runs one port method as one transaction, retrying transient failures. */
  private tx<T>(fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return transaction(
      this.pool,
      this.retryPolicy(),
      async (client) => {
        const tx: Tx = { client, t: new PgRunTransitions(client, (name, version) => this.compiled(client, name, version)), wake: false };
        tx.t.onRunEnded = (out, runId, status, at) => tx.t.run(endChild(tx.t, runId, status, at, out));
        const result = await fn(tx);
        await tx.t.flushEvents();
        if (tx.wake || tx.t.woken) await client.query(SQL.notify);
        return result;
      },
      options,
    );
  }

  /** Runs a single statement (its own implicit transaction), retrying transient failures. */
  private async q<R extends pg.QueryResultRow>(key: SqlKey, values: unknown[] = [], on?: pg.ClientBase): Promise<R[]> {
    if (on) return (await on.query<R>({ name: `s_${key}`, text: SQL[key], values })).rows;
    return transaction(this.pool, this.retryPolicy(), async (c) => (await c.query<R>({ name: `s_${key}`, text: SQL[key], values })).rows, {
      retryUnknownCommit: true,
    });
  }

  /** Runs one dynamic read statement, retrying transient failures. */
  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return transaction(this.pool, this.retryPolicy(), async (c) => (await c.query<R>(text, values)).rows, { retryUnknownCommit: true });
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Several processes may start at once: one migrates, the others wait and then find nothing to do.
      await client.query('SELECT pg_advisory_lock($1)', [String(MIGRATION_LOCK_KEY)]);
      try {
        await client.query(SQL.ledger);
        const done = new Set((await client.query<{ id: number }>(SQL.appliedMigrations)).rows.map((r) => r.id));
        for (const m of migrations) {
          if (done.has(m.id)) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query(SQL.recordMigration, [m.id, m.name, Date.now()]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [String(MIGRATION_LOCK_KEY)]);
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners) await l.close();
    this.listeners.clear();
    await this.pool.end();
  }

  /**
   * Calls `listener` whenever another transaction made attempts available (LISTEN on a dedicated connection
   * that reconnects with backoff). Resolves to an unsubscribe function.
   */
  async subscribeWakeups(listener: () => void): Promise<() => Promise<void>> {
    const l = new WakeupListener(this.connectionString, listener, this.onError);
    this.listeners.add(l);
    await l.start();
    return async () => {
      this.listeners.delete(l);
      await l.close();
    };
  }

  /**
   * Campaigns for leadership on a dedicated connection holding a session-level advisory lock (pg-leader.ts): one
   * process of the database leads at a time; followers try again every second.
   */
  async campaign(onChange: (leading: boolean) => void): Promise<() => Promise<void>> {
    const election = new LeaderElection(this.connectionString, onChange, this.onError);
    this.listeners.add(election);
    await election.start();
    return async () => {
      this.listeners.delete(election);
      await election.close();
    };
  }

  private async compiled(client: pg.ClientBase, name: string, version: number): Promise<CompiledPipeline> {
    const key = `${name}@${version}`;
    let c = this.compiledCache.get(key);
    if (!c) {
      const [row] = await this.q<PipelineRow>('pipeline', [name, version], client);
      if (!row) throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${name} version ${version} is not stored`);
      c = compilePipeline(JSON.parse(row.definition) as Pipeline);
      this.compiledCache.set(key, c);
    }
    return c;
  }

  async savePipeline(pipeline: Pipeline, hash: string, source: PipelineSource = {}): Promise<StoredPipeline> {
    return this.tx(async ({ client }) => {
      // Two processes saving the same pipeline at once must not both take the next version number.
      await this.q('xactLock', [`pipeline:${pipeline.name}`], client);
      const [latest] = await this.q<PipelineRow>('latestPipeline', [pipeline.name], client);
      if (latest && latest.hash === hash) return toStoredPipeline(latest);
      const row: PipelineRow = {
        name: pipeline.name,
        version: (latest?.version ?? 0) + 1,
        hash,
        definition: pgJson(pipeline),
        source: source.text ?? null,
        source_file: source.file ?? null,
        created_at: Date.now(),
      };
      await this.q('insertPipeline', [row.name, row.version, row.hash, row.definition, row.source, row.source_file, row.created_at], client);
      return toStoredPipeline(row);
    });
  }

  async getPipeline(name: string, version?: number): Promise<StoredPipeline | undefined> {
    const [row] = version === undefined ? await this.q<PipelineRow>('latestPipeline', [name]) : await this.q<PipelineRow>('pipeline', [name, version]);
    return row ? toStoredPipeline(row) : undefined;
  }

  async listPipelines(): Promise<StoredPipeline[]> {
    return (await this.q<PipelineRow>('latestPipelines')).map(toStoredPipeline);
  }

  async listPipelineVersions(name: string): Promise<StoredPipeline[]> {
    return (await this.q<PipelineRow>('pipelineVersions', [name])).map(toStoredPipeline);
  }

  async resetPipelineCache(name: string): Promise<number> {
    return this.tx(async ({ client }) => (await client.query(SQL.resetCache, [name])).rowCount ?? 0);
  }

  async createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns> {
    // Plain runs for workers elsewhere: one statement writes them, their events and the wake-up.
    const plain = claimNext && claimNext.limit > 0 ? null : planPlainRuns(requests, now);
    if (plain && plain.length > 0) {
      const runs = await transaction(this.pool, this.retryPolicy(), (c) => createRunsAlone(c, plain, true), { single: true });
      return { runs, claimed: { attempts: [], events: [] } };
    }
    return this.tx(async (tx) => {
      const runs: CreatedRun[] = [];
      const later = new NewRows();
      for (const req of requests) {
        // A request with an idempotency key must see the runs before it: write those first.
        if (req.idempotencyKey !== undefined) await insertNewRows(tx, later);
        runs.push(await createRunIn(tx, req, now, later));
      }
      await insertNewRows(tx, later);
      const queued = runs.reduce((n, r) => n + r.events.filter((e) => e.type === 'step.queued').length, 0);
      const claimed = claimNext && claimNext.limit > 0 ? await claimIn(tx, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {}) : { attempts: [], events: [] };
      tx.wake = queued > claimed.attempts.length;
      return { runs, claimed };
    });
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const [row] = await this.q<RunRow>('run', [id]);
    return row ? toRunRecord(row) : undefined;
  }

  async queueStats(now: number): Promise<Array<{ pipeline: string; depth: number; oldestReadyAt: number | null }>> {
    const rows = await this.query<{ pipeline: string; depth: number; oldest_ready_at: string | number | null }>(PG_QUEUE_STATS_SQL, [now]);
    return rows.map((r) => ({ pipeline: r.pipeline, depth: r.depth, oldestReadyAt: r.oldest_ready_at === null ? null : Number(r.oldest_ready_at) }));
  }

  async runTraceparent(runId: string): Promise<string | null> {
    const [row] = await this.query<{ traceparent: string | null }>(PG_RUN_TRACE_SQL.get, [runId]);
    return row?.traceparent ?? null;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const { sql, values } = listRunsStatement(filter);
    return (await this.query<RunRow>(sql, values)).map(toRunRecord);
  }

  async listSteps(runId: string): Promise<StepRecord[]> {
    return (await this.q<StepRow>('steps', [runId])).map(toStepRecord);
  }

  async listAttempts(runId: string, step?: string): Promise<AttemptRecord[]> {
    const rows = step === undefined ? await this.q<AttemptRow>('attempts', [runId]) : await this.q<AttemptRow>('stepAttempts', [runId, step]);
    return rows.map(toAttemptRecord);
  }

  async getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (names.length === 0) return out;
    for (const row of await this.q<{ name: string; output: string }>('stepOutputs', [runId, names])) out[row.name] = JSON.parse(row.output);
    return out;
  }

  async listEvents(filter: EventFilter): Promise<RunEvent[]> {
    const values: unknown[] = [filter.afterId ?? 0];
    const where = ['id > $1'];
    if (filter.runId) where.push(`run_id = $${values.push(filter.runId)}`);
    if (filter.pipeline) where.push(`pipeline = $${values.push(filter.pipeline)}`);
    const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${values.push(filter.limit ?? 1000)}`;
    return (await this.query<EventRow>(sql, values)).map(toRunEvent);
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const cols = [lines.map((l) => l.runId), lines.map((l) => l.step), lines.map((l) => l.attempt), lines.map((l) => l.stream), lines.map((l) => toPgText(l.line)), lines.map((l) => l.at)];
    await this.q('insertLogs', cols);
  }

  async listLogs(runId: string, step?: string): Promise<LogLine[]> {
    type LogRow = { run_id: string; step: string; attempt: number; stream: string; line: string; at: number };
    const rows = step === undefined ? await this.q<LogRow>('logs', [runId]) : await this.q<LogRow>('stepLogs', [runId, step]);
    return rows.map((r) => ({ runId: r.run_id, step: r.step, attempt: r.attempt, stream: r.stream, line: r.line, at: r.at }));
  }

  async lookupCache(pipeline: string, cacheKey: string): Promise<CacheHit | undefined> {
    const [row] = await this.q<{ output: string | null; run_id: string; outputs: string | null }>('cache', [pipeline, cacheKey]);
    return row ? { output: parseJson(row.output), runId: row.run_id, outputs: parseJson<FileHashes>(row.outputs) } : undefined;
  }

  async latestCacheEntry(pipeline: string, step: string): Promise<{ runId: string; parts: CacheParts | null } | undefined> {
    const [row] = await this.q<{ run_id: string; parts: string | null }>('latestCache', [pipeline, step]);
    return row ? { runId: row.run_id, parts: parseJson<CacheParts>(row.parts) } : undefined;
  }

  async claimAttempts(owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string } = {}): Promise<ClaimBatch> {
    // A claim whose commit is lost is harmless to repeat (its leases simply expire), and so is a claim lost in a
    // server crash (its attempts are claimable again): one statement, which does not wait for its WAL flush.
    const { batch, keyed } = await transaction(this.pool, this.retryPolicy(), (c) => claimAlone(c, owner, limit, leaseMs, now, only), { retryUnknownCommit: true, single: true });
    if (keyed.length === 0) return batch;
    const more = await this.tx((tx) => claimKeyed(tx, owner, keyed, leaseMs, now), { retryUnknownCommit: true, relaxed: true });
    return { attempts: [...batch.attempts, ...more.attempts], events: [...batch.events, ...more.events] };
  }

  async heartbeat(owner: string, attemptIds: number[], leaseMs: number, now: number): Promise<number[]> {
    const held = new Set((await this.q<{ id: number }>('heartbeat', [owner, now + leaseMs])).map((r) => r.id));
    return attemptIds.filter((id) => !held.has(id));
  }

  async completeAttempts(results: AttemptResult[], now: number, claimNext?: ClaimRequest): Promise<CompletionBatch> {
    // Fenced results are safe to apply twice (the second is rejected), so an unknown commit is retried too.
    return this.tx(
      async (tx) => {
        const batch: CompletionBatch = { accepted: [], rejected: [], events: [], queued: 0, claimed: [] };
        const ids = results.map((r) => r.attemptId);
        const locked = await this.q<RunHeader & { attempt_id: number; keyed: boolean }>('lockAttemptRuns', [ids], tx.client);
        const applied = await completeBatch(tx, results, now, batch.events, new Map(locked.map((r) => [r.attempt_id, r])));
        for (const r of results) (applied.has(r.attemptId) ? batch.accepted : batch.rejected).push(r.attemptId);
        batch.queued = batch.events.filter((e) => e.type === 'step.queued' || e.type === 'step.retrying').length;
        if (claimNext && claimNext.limit > 0) {
          const next = await claimIn(tx, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {});
          batch.claimed = next.attempts;
          batch.events.push(...next.events);
        }
        // A finished attempt with a concurrency key frees a slot that attempts waiting on its key may take.
        const freedKey = locked.some((r) => r.keyed);
        tx.wake = (batch.queued > 0 || freedKey) && (!claimNext || batch.claimed.length >= claimNext.limit || freedKey);
        return batch;
      },
      { retryUnknownCommit: true, indexOrder: claimNext !== undefined && claimNext.limit > 0 },
    );
  }

  async reap(now: number, isOwnerDead?: (owner: string) => boolean): Promise<ReapResult> {
    return this.tx(async (tx) => {
      const { client, t } = tx;
      const result: ReapResult = { expired: 0, timedOutRuns: 0, events: [] };
      // One reaper at a time across all processes; the others skip this round instead of queueing behind it.
      const [lock] = await this.q<{ locked: boolean }>('tryXactLock', [String(REAPER_LOCK_KEY)], client);
      if (!lock?.locked) return result;
      type Lease = { id: number; run_id: string; step: string; number: number; fence: number; owner: string };
      const expired = (await this.q<Lease>('expiredLeases', [now], client)).map((a) => ({ ...a, dead: false }));
      if (isOwnerDead) {
        const dead = (await this.q<{ owner: string }>('runningOwners', [], client)).map((r) => r.owner).filter(isOwnerDead);
        if (dead.length > 0) expired.push(...(await this.q<Lease>('ownerAttempts', [dead], client)).map((a) => ({ ...a, dead: true })));
      }
      const overdue = (await this.q<{ id: string }>('overdueRuns', [now], client)).map((r) => r.id);
      if (expired.length === 0 && overdue.length === 0) return result;
      await t.lockRuns([...expired.map((a) => a.run_id), ...overdue]);
      const seen = new Set<number>();
      for (const a of expired) {
        if (seen.has(a.id) || ((await client.query(SQL.expireAttempt, [a.id, now, a.fence, a.dead])).rowCount ?? 0) === 0) continue;
        seen.add(a.id);
        result.expired += 1;
        await t.run(requeueExpired(t, a.run_id, a.step, now, result.events));
      }
      for (const id of overdue) {
        const run = (await t.getRun(id))!;
        // Another reaper may have ended it between the select and the lock.
        if (!['queued', 'running', 'paused', 'waiting'].includes(run.status) || run.deadline_at === null || run.deadline_at >= now) continue;
        result.timedOutRuns += 1;
        await t.terminate(result.events, run, 'failed', now, { code: 'RUN_TIMEOUT', message: 'the run exceeded its timeout' });
      }
      return result;
    });
  }

  async controlRun(runId: string, action: RunAction, now: number): Promise<TransitionResult> {
    return this.tx(async ({ t }) => {
      const events: RunEvent[] = [];
      await t.run(controlRun(t, await this.lockRun(t, runId), action, now, events));
      return { run: toRunRecord((await t.getRun(runId))!), events };
    });
  }

  async rollbackRun(runId: string, step: string, now: number): Promise<TransitionResult> {
    return this.tx(async ({ t }) => {
      const events: RunEvent[] = [];
      await t.run(rollbackRun(t, await this.lockRun(t, runId), step, now, events));
      return { run: toRunRecord((await t.getRun(runId))!), events };
    });
  }

  async decideStep(runId: string, step: string, decision: HumanDecision, now: number): Promise<TransitionResult> {
    return this.tx(async (tx) => {
      const events: RunEvent[] = [];
      await tx.t.run(decide(tx.t, await this.lockRun(tx.t, runId), step, decision, now, events));
      tx.wake = events.some((e) => e.type === 'step.queued');
      return { run: toRunRecord((await tx.t.getRun(runId))!), events };
    });
  }

  async listDecisions(runId: string): Promise<GateDecisionRecord[]> {
    const client = await this.pool.connect();
    try {
      return await new PgRunTransitions(client, (n, v) => this.compiled(client, n, v)).run(listDecisions(runId));
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query('SELECT 1');
      client.release();
      this.onSuccess();
    } catch (err) {
      client?.release(err as Error);
      this.sawError(err);
      throw toStoreError(err, this.url);
    }
  }

  latestEventId(): Promise<number> {
    return this.ops.latestEventId();
  }

  queueDepth(): Promise<number> {
    return this.ops.queueDepth();
  }

  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return this.ops.pipelineStats(pipeline, since, series);
  }

  createToken(token: NewApiToken, now: number): Promise<ApiToken> {
    return this.ops.createToken(token, now);
  }

  findToken(hash: string): Promise<ApiToken | undefined> {
    return this.ops.findToken(hash);
  }

  listTokens(): Promise<ApiToken[]> {
    return this.ops.listTokens();
  }

  revokeToken(id: number, now: number): Promise<ApiToken | undefined> {
    return this.ops.revokeToken(id, now);
  }

  countTokens(): Promise<number> {
    return this.ops.countTokens();
  }

  claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean> {
    return this.ops.claimTriggerSlot(pipeline, slot, now);
  }

  claimCronSlot(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean> {
    return new PgCronSlots((text, values) => transaction(this.pool, this.retryPolicy(), (c) => c.query(text, values))).claim(pipeline, trigger, slot, now);
  }

  lastCronSlot(pipeline: string, trigger: string): Promise<number | undefined> {
    return new PgCronSlots((text, values) => transaction(this.pool, this.retryPolicy(), (c) => c.query(text, values))).last(pipeline, trigger);
  }

  pruneRuns(request: PruneRequest): Promise<PruneResult> {
    return pgPrune((fn) => transaction(this.pool, this.retryPolicy(), fn), request);
  }

  putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord> {
    return this.datasets.putDataset(name, options, now);
  }

  getDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.datasets.getDataset(name);
  }

  listDatasets(): Promise<DatasetRecord[]> {
    return this.datasets.listDatasets();
  }

  putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void> {
    return this.datasets.putRecords(dataset, records, now);
  }

  getRecord(dataset: string, id: string): Promise<DataRecord | undefined> {
    return this.datasets.getRecord(dataset, id);
  }

  deleteRecord(dataset: string, id: string): Promise<boolean> {
    return this.datasets.deleteRecord(dataset, id);
  }

  listRecords(dataset: string, page?: RecordPage): Promise<DataRecord[]> {
    return this.datasets.listRecords(dataset, page);
  }

  countRecords(dataset: string): Promise<number> {
    return this.datasets.countRecords(dataset);
  }

  async takeRate(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number> {
    return this.tx(({ client }) => takeRateIn(client, key, limits, tokens, now));
  }

  async settleRate(key: string, at: number, delta: number): Promise<void> {
    await this.tx(({ client }) => sql(client, 'settleRate', [key, Math.floor(at / 60_000), delta]));
  }

  async loadStepItems(runId: string, step: string): Promise<StepItem[]> {
    return (await this.q<StepItemRow>('stepItems', [runId, step])).map(toStepItem);
  }

  async saveStepItems(lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void> {
    await this.tx(({ client }) => saveStepItemsIn(client, lease, runId, step, items, now));
  }

  async listDeadLetters(limit: number): Promise<RunRecord[]> {
    return (await this.q<RunRow>('deadLetters', [limit])).map(toRunRecord);
  }

  private async lockRun(t: PgRunTransitions, runId: string): Promise<RunRow> {
    const run = await t.lockRun(runId);
    if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${runId}`);
    return run;
  }
}
