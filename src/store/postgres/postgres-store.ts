import type { FoldOptions, FoldReport } from '../stats/rollup.js';
import { PgStats } from '../stats/pg-stats.js';
import type pg from 'pg';
import type {
  AttemptResult,
  ClaimBatch,
  ClaimRequest,
  CompletionBatch,
  CreateRunRequest,
  CreatedRuns,
  PipelineStats,
  SeriesOptions,
  LogLine,
  Store,
} from '../store.js';
import { migrateDatabase } from './pg-migrate.js';
import { completeAttemptsIn, createRunsIn, transitionIn } from './pg-run-ops.js';
import { createPool, transaction, type RetryPolicy, type TransactionOptions } from './pg-pool.js';
import { SharedStore, type LedgerRunner } from '../shared-store.js';
import { PgFeatureRunner, TxOpener } from './pg-run-transitions.js';
import { anyHeldRuns, releaseHeldRuns } from '../flow/flow-ops.js';
import type { Rule } from '../ledger/effects.js';
import { claimAlone, claimKeyed, createRunsAlone, planPlainRuns, type LockedRun, type Tx } from './pg-attempts.js';
import { lockAttemptRunsText, SQL, sql, type SqlKey } from './pg-store-sql.js';
import { WakeupListener } from './pg-wakeups.js';
import { LeaderElection } from './pg-leader.js';
import { toPgText } from './pg-json.js';
import { ConnectionHealth } from './pg-health.js';

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
export class PostgresStore extends SharedStore implements Store {
  readonly capabilities = { listenNotify: true, concurrentWriters: true, leaderElection: true, artifactTables: true };
  readonly url: string;
  private readonly connectionString: string;
  private readonly pool: pg.Pool;
  private readonly txs = new TxOpener();
  private readonly listeners = new Set<WakeupListener | LeaderElection>();
  private readonly health: ConnectionHealth;
  private readonly onError: (err: unknown) => void;
  private closed = false;
  /** Pipeline stats from the stats rollup, and its fold (../stats/pg-stats.ts). */
  private readonly stats = new PgStats((fn) => transaction(this.pool, this.health.retryPolicy(), fn));
  /** Datasets, eval cases, derived values, tokens, trigger slots: rules written once (../features), run here. */
  protected readonly features = new PgFeatureRunner((fn) => transaction(this.pool, this.health.retryPolicy(), fn));

  constructor(options: PostgresStoreOptions) {
    super();
    this.connectionString = options.url;
    const display = new URL(options.url);
    if (display.password) display.password = '***';
    this.url = display.toString();
    this.onError = options.onError ?? (() => undefined);
    this.health = new ConnectionHealth(options.retryForMs ?? 60_000, this.onError);
    this.pool = createPool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      onError: (err) => {
        this.health.sawError(err);
        this.onError(err);
      },
    });
  }

  /**
   * The store's connection pool and how its transactions retry, for what keeps data in the same database beside
   * the store (its artifact tables: `capabilities.artifactTables`). The store closes the pool.
   */
  sharedPool(): { pool: pg.Pool; retry: RetryPolicy } {
    return { pool: this.pool, retry: this.health.retryPolicy() };
  }

  isUnreachable(): boolean {
    return this.health.isUnreachable();
  }

  protected readonly ledger: LedgerRunner = {
    read: (make) => this.tx((tx) => tx.t.run(make())),
    write: (rule) => this.tx((tx) => tx.t.run(rule(tx.t))),
    transition: (runId, rule, wakeOnQueued) => this.tx((tx) => transitionIn(tx, runId, rule, wakeOnQueued)),
  };

  /** Runs one port method as one transaction, retrying transient failures. */
  private tx<T>(fn: (tx: Tx, opened: pg.QueryResultRow[]) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return transaction(
      this.pool,
      this.health.retryPolicy(),
      async (client, opened) => {
        const tx = this.txs.open(client);
        const result = await fn(tx, opened);
        await tx.t.flushEvents();
        if (tx.wake || tx.t.woken) await client.query(SQL.notify);
        return result;
      },
      options,
    );
  }

  /**
   * Runs a single statement as its own transaction (one round trip, no BEGIN and COMMIT), retrying transient
   * failures. Each statement run so is safe to repeat: a read, the heartbeat, a batch of log lines.
   */
  private async q<R extends pg.QueryResultRow>(key: SqlKey, values: unknown[] = [], on?: pg.ClientBase): Promise<R[]> {
    if (on) return sql<R>(on, key, values);
    return transaction(this.pool, this.health.retryPolicy(), (c) => sql<R>(c, key, values), { retryUnknownCommit: true, single: true });
  }

  /**
   * Runs a ledger rule that only reads, its statements outside a transaction block, retrying transient failures
   * (each try with a new rule made by `make`).
   */
  private read<T>(make: () => Rule<T>): Promise<T> {
    return transaction(this.pool, this.health.retryPolicy(), (c) => this.txs.open(c).t.run(make()), { retryUnknownCommit: true, single: true });
  }

  /** Runs one statement built per call (../run-list.ts), retrying transient failures. */
  protected built<R>({ sql, values }: { sql: string; values: unknown[] }): Promise<R[]> {
    return transaction(this.pool, this.health.retryPolicy(), async (c) => (await c.query(sql, values)).rows as R[], { retryUnknownCommit: true });
  }

  async migrate(): Promise<void> {
    await migrateDatabase(this.pool);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners) await l.close();
    this.listeners.clear();
    await this.pool.end();
  }

  /** LISTENs on a dedicated connection that reconnects with backoff (pg-wakeups.ts). */
  async subscribeWakeups(listener: () => void): Promise<() => Promise<void>> {
    return this.listen(new WakeupListener(this.connectionString, listener, this.onError));
  }

  /**
   * Campaigns for leadership on a dedicated connection holding a session-level advisory lock (pg-leader.ts): one
   * process of the database leads at a time; followers try again every second.
   */
  async campaign(onChange: (leading: boolean) => void): Promise<() => Promise<void>> {
    return this.listen(new LeaderElection(this.connectionString, onChange, this.onError));
  }

  /** Starts a connection of its own (closed with the store); resolves to a function that closes it sooner. */
  private async listen(l: WakeupListener | LeaderElection): Promise<() => Promise<void>> {
    this.listeners.add(l);
    await l.start();
    return async () => {
      this.listeners.delete(l);
      await l.close();
    };
  }

  async createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns> {
    // Flow rules lock their buckets in the transaction that creates the runs.
    if (requests.some((r) => r.flow)) return this.tx((tx) => createRunsIn(tx, requests, now, claimNext));
    // Plain runs for workers elsewhere: one statement writes them, their events and the wake-up.
    const plain = claimNext && claimNext.limit > 0 ? null : planPlainRuns(requests, now);
    if (plain && plain.length > 0) {
      const runs = await transaction(this.pool, this.health.retryPolicy(), (c) => createRunsAlone(c, plain), { single: true });
      return { runs, claimed: { attempts: [], events: [] } };
    }
    return this.tx((tx) => createRunsIn(tx, requests, now, claimNext));
  }

  async releaseHeldRuns(now: number): Promise<string[]> {
    if (!(await this.read(anyHeldRuns))) return [];
    return this.tx(async (tx) => {
      const ids = await tx.t.run(releaseHeldRuns(now));
      tx.wake = ids.length > 0;
      return ids;
    });
  }

  async getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (names.length === 0) return out;
    for (const row of await this.q<{ name: string; output: string }>('stepOutputs', [runId, names])) out[row.name] = JSON.parse(row.output);
    return out;
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const cols = [lines.map((l) => l.runId), lines.map((l) => l.step), lines.map((l) => l.attempt), lines.map((l) => l.stream), lines.map((l) => toPgText(l.line)), lines.map((l) => l.at)];
    await this.q('insertLogs', cols);
  }

  async claimAttempts(owner: string, limit: number, leaseMs: number, now: number, only: { runId?: string } = {}): Promise<ClaimBatch> {
    // A claim whose commit is lost is harmless to repeat (its leases simply expire), and so is a claim lost in a
    // server crash (its attempts are claimable again): one statement, which does not wait for its WAL flush.
    const { batch, keyed } = await transaction(this.pool, this.health.retryPolicy(), (c) => claimAlone(c, owner, limit, leaseMs, now, only), { retryUnknownCommit: true, single: true });
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
    // The runs of the results are locked by a statement sent with BEGIN.
    const opening = lockAttemptRunsText(results.map((r) => r.attemptId));
    const options = { retryUnknownCommit: true, indexOrder: claimNext !== undefined && claimNext.limit > 0, opening };
    return this.tx((tx, locked) => completeAttemptsIn(tx, results, now, claimNext, opening === undefined ? undefined : (locked as LockedRun[])), options);
  }

  async ping(): Promise<void> {
    await this.health.ping(this.pool, this.url);
  }

  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return this.stats.pipelineStats(pipeline, since, series);
  }

  foldStats(now: number, options?: FoldOptions): Promise<FoldReport> {
    return this.stats.foldStats(now, options);
  }

  refoldStats(pipeline: string, before: number): Promise<number> {
    return this.stats.refoldStats(pipeline, before);
  }

  protected readOne<T>(make: () => Rule<T>): Promise<T> {
    return this.read(make);
  }

}
