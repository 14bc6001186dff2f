import type { FoldOptions, FoldReport } from '../stats/rollup.js';
import type { PruneRequest, PruneResult } from '../retention/prune.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { toStoreError } from '../store-errors.js';
import { SluiceError, type ErrorRecord } from '../../core/errors.js';
import type {
  AttemptResult,
  ClaimBatch,
  ClaimRequest,
  CompletionBatch,
  CreateRunRequest,
  CreatedRuns,
  LogLine,
  RunEvent,
  Store,
  PipelineStats,
  SeriesOptions,
} from '../store.js';
import {
  toRunRecord,
  type StepRow,
} from '../rows.js';
import { SqliteStats } from '../stats/sqlite-stats.js';
import { SharedStore, type LedgerRunner } from '../shared-store.js';
import { SqliteFeatureRunner } from './sqlite-features.js';
import { Statement, type Rule } from '../ledger/effects.js';
import { CompiledPipelines } from '../shared-sql.js';
import { RunTransitions } from './run-transitions.js';
import { SQL } from './store-sql.js';
import { endChild } from '../ledger/outcomes.js';
import { AttemptBatches } from './attempt-batches.js';
import { RunHeaders, type HeaderRow, type SqliteCtx } from './sqlite-context.js';
import { applyMigrations, createRun } from './run-create.js';
import { anyHeldRuns, releaseHeldRuns } from '../flow/flow-ops.js';
import { startWithFlow } from '../flow/flow-start.js';
import type { FlowDriver } from '../flow/flow-ops.js';
import { claimInTransaction } from './claims.js';
import { completeAttempts } from './completions.js';
import { Checkpointer } from './checkpointer.js';

export interface SqliteStoreOptions {
  /** `:memory:` or a file path; parent folders are created. */
  path: string;
  /** Milliseconds to wait for another process's write lock. Default: 5 s. */
  busyTimeoutMs?: number;
}

/** The embedded backend: one SQLite file in WAL mode with synchronous=NORMAL. */
export class SqliteStore extends SharedStore implements Store {
  readonly capabilities = { listenNotify: false, concurrentWriters: false, leaderElection: false, artifactTables: false };
  readonly url: string;
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly pipelines = new CompiledPipelines();
  /** Fields of a run that never change after creation, so hot paths need not read the row again. */
  private readonly headers = new RunHeaders((id) => this.stmt('runHeader').get({ id }) as HeaderRow | undefined);
  private runTransitions: RunTransitions | undefined;
  private attemptBatches: AttemptBatches | undefined;
  /** Counts, sums and percentiles computed by SQLite with bounded memory (../stats/sqlite-stats.ts). */
  private readonly stats: SqliteStats;
  /** Datasets, eval cases, derived values, tokens, trigger slots: rules written once (../features), run here. */
  protected readonly features: SqliteFeatureRunner;
  /** What the run functions of this folder work with. */
  private readonly ctx: SqliteCtx;
  /** Write transactions until the checkpoint thread starts (a file store that writes that much is a busy one). */
  private writesBeforeCheckpointer: number;
  private checkpointer: Checkpointer | undefined;

  private get batches(): AttemptBatches {
    return (this.attemptBatches ??= new AttemptBatches(this.db));
  }

  private get transitions(): RunTransitions {
    if (!this.runTransitions) throw new SluiceError('STORE_ERROR', 'the store is not migrated yet: call migrate() first');
    return this.runTransitions;
  }

  constructor(options: SqliteStoreOptions) {
    super();
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.url = `sqlite:${options.path}`;
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.db.pragma('foreign_keys = ON');
    const pragmas = (process.env['SLUICE_SQLITE_PRAGMAS'] ?? '').split(';').filter(Boolean);
    for (const extra of pragmas) this.db.pragma(extra);
    // A connection whose checkpoints were set (SLUICE_SQLITE_PRAGMAS names wal_autocheckpoint) keeps them.
    const ownCheckpoints = options.path === ':memory:' || pragmas.some((p) => /wal_autocheckpoint/i.test(p));
    this.writesBeforeCheckpointer = ownCheckpoints ? Infinity : CHECKPOINTER_AFTER_WRITES;
    this.inTransaction = this.db.transaction((fn: () => unknown) => {
      const result = fn();
      this.runTransitions?.flushEvents();
      return result;
    });
    this.stats = new SqliteStats(this.db);
    this.features = new SqliteFeatureRunner(this.db, (fn) => this.write(fn));
    const transitions = () => this.transitions;
    const batches = () => this.batches;
    this.ctx = {
      get transitions() {
        return transitions();
      },
      get batches() {
        return batches();
      },
      stmt: (key) => this.stmt(key),
      write: (fn) => this.write(fn),
      header: (id) => this.headers.get(id),
      remember: (row) => this.headers.remember(row),
    };
  }

  async pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return this.stats.pipelineStats(pipeline, since, series);
  }

  async foldStats(now: number, options?: FoldOptions): Promise<FoldReport> {
    return this.stats.foldStats(now, options);
  }

  async refoldStats(pipeline: string, before: number): Promise<number> {
    return this.stats.refoldStats(pipeline, before);
  }

  /** The shared prune (../retention/prune.ts), then the freed pages go back to the file system. */
  override async pruneRuns(request: PruneRequest): Promise<PruneResult> {
    const result = await super.pruneRuns(request);
    if (!request.dryRun && result.runs > 0) result.reclaimedBytes = reclaimSpace(this.db);
    return result;
  }

  /** A statement of store-sql.ts, prepared once. */
  private stmt(key: keyof typeof SQL): Database.Statement {
    let s = this.stmts.get(key);
    if (!s) this.stmts.set(key, (s = this.db.prepare(SQL[key])));
    return s;
  }

  protected readonly ledger: LedgerRunner = {
    read: async (make) => this.transitions.run(make()),
    write: async (rule) => this.write(() => this.transitions.run(rule(this.transitions))),
    transition: async (runId, rule) =>
      this.write(() => {
        const run = this.transitions.getRun(runId);
        if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${runId}`);
        const events: RunEvent[] = [];
        this.transitions.run(rule(this.transitions, run, events));
        return { run: toRunRecord(this.transitions.getRun(runId)!), events };
      }),
  };

  /** Runs its argument and writes the events it emitted; made once, as wrapping a function per write costs more than a short write. */
  private readonly inTransaction: Database.Transaction<(fn: () => unknown) => unknown>;

  /** Runs `fn` in a write transaction taken at once (BEGIN IMMEDIATE), so concurrent writers queue instead of failing. */
  private write<T>(fn: () => T): T {
    if (--this.writesBeforeCheckpointer === 0) this.startCheckpointer();
    try {
      return this.inTransaction.immediate(fn) as T;
    } catch (err) {
      this.runTransitions?.discardEvents();
      // A full disk or a read-only file gets its stable code (STORE_FULL, STORE_READONLY) and the path.
      throw toStoreError(err, this.url);
    }
  }

  async migrate(): Promise<void> {
    this.write(() => applyMigrations(this.db));
    this.runTransitions = new RunTransitions(this.db, (name, version) => this.features.run(this.pipelines.get(name, version)));
    this.runTransitions.onRunEnded = (out, runId, status, at) => this.transitions.run(endChild(this.transitions, runId, status, at, out));
  }

  /**
   * Moves checkpoints off this thread (./checkpointer.ts). This connection's automatic checkpoint stays, at a
   * threshold the thread keeps the WAL under unless it falls behind, and back at SQLite's if the thread fails.
   */
  private startCheckpointer(): void {
    if (!this.db.open) return;
    this.checkpointer = new Checkpointer(this.db.name, () => {
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_CHECKPOINT_PAGES}`);
    });
    this.db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`);
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    this.checkpointer = undefined;
    if (this.db.open) this.db.close();
  }

  /** No other process can wake this one (`capabilities.listenNotify` is false): the listener is never called. */
  async subscribeWakeups(_listener: () => void): Promise<() => Promise<void>> {
    return async () => undefined;
  }

  /** One process uses the file (`capabilities.leaderElection` is false): it leads at once, until it stops. */
  async campaign(onChange: (leading: boolean) => void): Promise<() => Promise<void>> {
    onChange(true);
    return async () => onChange(false);
  }

  /** A small read: the file answers or the error says why. */
  async ping(): Promise<void> {
    await this.listRuns({ limit: 1 });
  }

  /** Never: a file needs no connection. */
  isUnreachable(): boolean {
    return false;
  }

  async createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns> {
    return this.write(() => {
      const runs = requests.map((req) => (req.flow ? this.transitions.run(startWithFlow(this.flowDriver(now), req, now)) : createRun(this.ctx, req, now)));
      const claimed =
        claimNext && claimNext.limit > 0
          ? claimInTransaction(this.ctx, claimNext.owner, claimNext.limit, claimNext.leaseMs, now, claimNext.only ?? {})
          : { attempts: [], events: [] };
      return { runs, claimed };
    });
  }

  /**
   * What the flow rules (../flow) run a start with, inside createRuns' write transaction, which BEGIN IMMEDIATE
   * serialises across every process sharing the file.
   */
  private flowDriver(now: number): FlowDriver {
    return { json: (v) => this.transitions.json(v), create: (r) => createRun(this.ctx, r, now), changed: (id) => this.headers.forget(id) };
  }

  /** Flow control: starts the runs a singleton queue held behind a run that has ended. */
  async releaseHeldRuns(now: number): Promise<string[]> {
    return this.transitions.run(anyHeldRuns()) ? this.write(() => this.transitions.run(releaseHeldRuns(now))) : [];
  }

  /**
   * The rows of a statement built per call (../run-list.ts); each form (a few: filters there or not) is prepared
   * once per store.
   */
  protected async built<R>({ sql, values }: { sql: string; values: unknown[] }): Promise<R[]> {
    const stmt = new Statement('built', sql);
    let prepared = this.stmts.get(stmt.sqlite);
    if (!prepared) this.stmts.set(stmt.sqlite, (prepared = this.db.prepare(stmt.sqlite)));
    return prepared.all(stmt.sqliteArgs(values)) as R[];
  }

  async getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const row = this.stmt('stepOutput').get({ run_id: runId, name }) as Pick<StepRow, 'output'> | undefined;
      if (row && row.output !== null) out[name] = JSON.parse(row.output);
    }
    return out;
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    this.write(() => {
      for (const l of lines) this.stmt('insertLog').run({ run_id: l.runId, step: l.step, attempt: l.attempt, stream: l.stream, line: l.line, at: l.at });
    });
  }

  async claimAttempts(owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string } = {}): Promise<ClaimBatch> {
    return this.write(() => claimInTransaction(this.ctx, owner, limit, leaseMs, now, only));
  }

  async completeAttempts(results: AttemptResult[], now: number, claimNext?: ClaimRequest): Promise<CompletionBatch> {
    return completeAttempts(this.ctx, results, now, claimNext);
  }

  async heartbeat(owner: string, attemptIds: number[], leaseMs: number, now: number): Promise<number[]> {
    const held = this.write(() => new Set((this.stmt('heartbeat').all({ owner, lease_until: now + leaseMs }) as Array<{ id: number }>).map((r) => r.id)));
    return attemptIds.filter((id) => !held.has(id));
  }

  protected readOne<T>(make: () => Rule<T>): Promise<T> {
    return this.features.read(make);
  }
}

/** Write transactions a file store makes before its checkpoints move to a thread of their own. */
const CHECKPOINTER_AFTER_WRITES = 200;
/** SQLite's automatic checkpoint threshold, in pages: the writer's again if that thread fails. */
const SQLITE_CHECKPOINT_PAGES = 1000;
/** The automatic checkpoint's threshold while that thread runs, in pages. */
const FALLBACK_CHECKPOINT_PAGES = 10_000;

/**
 * Gives free pages back to the file system; returns the bytes given back. The first prune of a file created without
 * incremental auto-vacuum switches it on, which takes one full VACUUM (a rewrite of the file); later prunes run
 * `PRAGMA incremental_vacuum`.
 */
function reclaimSpace(db: Database.Database): number {
  const size = () => (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  const before = size();
  if ((db.pragma('auto_vacuum', { simple: true }) as number) !== 2) {
    // auto_vacuum changes on an existing file only with a VACUUM, which rewrites it once.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  } else {
    db.pragma('incremental_vacuum');
  }
  return Math.max(0, before - size());
}

export type { ErrorRecord };
