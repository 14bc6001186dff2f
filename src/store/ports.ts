import type { FoldOptions, FoldReport } from './stats/rollup.js';
import type { FlowPort } from './flow/flow-port.js';
import type { WaitPort } from './waits-port.js';
import type { CacheParts } from '../core/cache-key.js';
import type { Pipeline } from '../core/model.js';
import type { StepItem } from '../core/step-results.js';
import type { AttributeValueStore } from './attributes.js';
import type { EvalStore } from './evals.js';
import type { PruneRequest, PruneResult } from './retention/prune.js';
import type {
  ApiToken,
  AttemptLease,
  AttemptRecord,
  AttemptResult,
  CacheHit,
  ClaimBatch,
  ClaimRequest,
  CompletionBatch,
  CreateRunRequest,
  CreatedRuns,
  DataRecord,
  DatasetRecord,
  EventFilter,
  GateDecisionRecord,
  HumanDecision,
  LogLine,
  NewApiToken,
  NewDataRecord,
  PipelineSource,
  PipelineStats,
  ReapResult,
  RecordPage,
  RunAction,
  RunEvent,
  RunFilter,
  RunRecord,
  SeriesOptions,
  StepRecord,
  StoreCapabilities,
  StoredPipeline,
  TransitionResult,
} from './store.js';

/**
 * The port the engine runs pipelines through: pipelines, runs and their attempts, the run-state transitions
 * (which the ledger, src/store/ledger, decides once for every backend), logs, the cache, rate budgets, item
 * checkpoints, wake-ups and leadership (which only shared backends need: see {@link StoreCapabilities}).
 */
export interface RunPort {
  readonly capabilities: StoreCapabilities;

  /** A display form of the store URL (no password). */
  readonly url: string;

  /** Applies pending numbered migrations, recorded in a ledger. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Stores the pipeline; a new version is created only when its hash differs from the latest. */
  savePipeline(pipeline: Pipeline, hash: string, source?: PipelineSource): Promise<StoredPipeline>;

  /** The given version, or the latest when `version` is omitted. */
  getPipeline(name: string, version?: number): Promise<StoredPipeline | undefined>;

  /**
   * Creates runs with their steps and first attempts in one transaction. With `claimNext`, the same
   * transaction leases available attempts to an in-process worker (enqueue-to-start without a second commit).
   */
  createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns>;
  getRun(id: string): Promise<RunRecord | undefined>;

  /** Outputs of the named steps of a run (missing or unfinished steps are absent). */
  getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>>;
  appendLogs(lines: LogLine[]): Promise<void>;

  /** A cached result for the key, if a succeeded step produced one. */
  lookupCache(pipeline: string, cacheKey: string): Promise<CacheHit | undefined>;

  /** The latest cached result of the pipeline's step, whatever its key: what a cache miss is explained against. */
  latestCacheEntry(pipeline: string, step: string): Promise<{ runId: string; parts: CacheParts | null } | undefined>;

  /** Leases up to `limit` available attempts to `owner`, optionally only those of one run. */
  claimAttempts(owner: string, limit: number, leaseMs: number, now: number, only?: { runId?: string }): Promise<ClaimBatch>;

  /** Extends the leases of the owner's running attempts; returns the ids it no longer holds. */
  heartbeat(owner: string, attemptIds: number[], leaseMs: number, now: number): Promise<number[]>;

  /**
   * Records results; a result whose fence is stale is rejected, never applied. With `claimNext`, the same
   * transaction then leases the next attempts (complete-and-fetch halves the commits of a busy worker).
   */
  completeAttempts(results: AttemptResult[], now: number, claimNext?: ClaimRequest): Promise<CompletionBatch>;

  /**
   * Re-queues attempts whose lease expired (or whose owner `isOwnerDead` says is gone) and fails runs past
   * their deadline. Returns what it did.
   */
  reap(now: number, isOwnerDead?: (owner: string) => boolean): Promise<ReapResult>;

  /** pause, resume, cancel, retry (re-run failed/cancelled/unstarted steps). Throws ILLEGAL_TRANSITION. */
  controlRun(runId: string, action: RunAction, now: number): Promise<TransitionResult>;

  /** Discards the outputs of `step` and its descendants and runs them again. */
  rollbackRun(runId: string, step: string, now: number): Promise<TransitionResult>;

  /**
   * A human's decision on a blocked step: approve (the step succeeds and the run goes on) or reject (the
   * step fails; its on_failure applies). The decision is stored in the audit (`kind: 'human'`); an approved step's
   * output keeps what it held while blocked (a gate's report) plus `human: { decision, comment, by, at }`.
   * Throws ILLEGAL_TRANSITION unless the step is blocked.
   */
  decideStep(runId: string, step: string, decision: HumanDecision, now: number): Promise<TransitionResult>;

  /**
   * Takes one request (and `tokens` estimated tokens) from the shared per-minute budget of `key`; returns
   * 0 when granted, else the milliseconds until the budget renews. Shared by every worker of the store.
   */
  takeRate(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number>;

  /** Corrects the tokens counted for `key` in the window of `at` by `delta` (actual minus estimate). */
  settleRate(key: string, at: number, delta: number): Promise<void>;

  /** Per-item results recorded by a fan-out step (`map`) of a run, by index. */
  loadStepItems(runId: string, step: string): Promise<StepItem[]>;

  /** Records per-item results; rejected with LEASE_LOST unless `lease` still holds the step's attempt. */
  saveStepItems(lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void>;

  /**
   * Calls `listener` whenever a transaction of any process made attempts available, so idle workers claim at once
   * instead of at their next poll; resolves to a function that unsubscribes. Only a backend with
   * `capabilities.listenNotify` (PostgreSQL) hears other processes: the subscription survives lost connections (it
   * reconnects and then calls `listener` once, since wake-ups sent meanwhile are gone). Without it (SQLite) there is
   * nothing to hear and the listener is never called. Workers keep polling as a fallback.
   */
  subscribeWakeups(listener: () => void): Promise<() => Promise<void>>;

  /**
   * Campaigns for leadership of the store, which one process holds at a time; the leader reaps expired leases.
   * `onChange` is called when this process starts or stops leading. With `capabilities.leaderElection`
   * (PostgreSQL) leadership moves within seconds when the leader's process or connection dies; without it
   * (SQLite, one process) this process leads at once. Resolves, after the first try, to a function that stops
   * campaigning (and resigns).
   */
  campaign(onChange: (leading: boolean) => void): Promise<() => Promise<void>>;
}

/**
 * Reads for the CLI, the server and the dashboard: runs, steps, attempts, events, logs, decisions, pipelines.
 */
export interface ReadPort {
  listPipelines(): Promise<StoredPipeline[]>;
  listPipelineVersions(name: string): Promise<StoredPipeline[]>;

  /** Forgets every cached step output of the pipeline (all versions). Returns how many were dropped. */
  resetPipelineCache(name: string): Promise<number>;
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  listSteps(runId: string): Promise<StepRecord[]>;
  listAttempts(runId: string, step?: string): Promise<AttemptRecord[]>;

  /**
   * Events in id order. Ids only grow, but on a backend with `concurrentWriters` (PostgreSQL) a transaction may
   * commit an event after another committed a higher id: a reader paging by `afterId` may re-read a short window.
   */
  listEvents(filter: EventFilter): Promise<RunEvent[]>;
  listLogs(runId: string, step?: string): Promise<LogLine[]>;

  /** Every decision of a run (gates' and people's), oldest first. */
  listDecisions(runId: string): Promise<GateDecisionRecord[]>;

  /** Failed runs (dead letters), newest first. */
  listDeadLetters(limit: number): Promise<RunRecord[]>;

  /** The largest event id (0 when there is none), where live streams start. */
  latestEventId(): Promise<number>;

  /** Attempts queued and available now or later (not held by a paused run). */
  queueDepth(): Promise<number>;
  /**
   * Attempts queued per pipeline (pipelines with none are left out), and when the oldest of them that
   * is ready (not delayed) became claimable, epoch ms (null when all are delayed).
   */
  queueStats(now: number): Promise<Array<{ pipeline: string; depth: number; oldestReadyAt: number | null }>>;
  /** The W3C `traceparent` a run was started with, null when none (or no such run). */
  runTraceparent(runId: string): Promise<string | null>;
}

/**
 * Datasets: named collections of JSON object records keyed by id. Records reach the store already validated
 * and passed through any ingest pipeline.
 */
export interface DatasetPort {
  /** Creates the dataset or updates its ingest pipeline; `created_at` is kept on update. */
  putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord>;
  getDataset(name: string): Promise<DatasetRecord | undefined>;

  /** Every dataset, by name. */
  listDatasets(): Promise<DatasetRecord[]>;

  /**
   * Upserts records in one transaction: all are stored or none (DATASET_NOT_FOUND when the dataset does not
   * exist, RECORD_INVALID naming the first record whose `data` is not a JSON object).
   */
  putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void>;
  getRecord(dataset: string, id: string): Promise<DataRecord | undefined>;

  /** True when a record was deleted. */
  deleteRecord(dataset: string, id: string): Promise<boolean>;

  /** One page of records in id order (byte order of the id), starting after `after`. Default limit: 100. */
  listRecords(dataset: string, page?: RecordPage): Promise<DataRecord[]>;
  countRecords(dataset: string): Promise<number>;
}

/**
 * API tokens of the server (`sluice serve`).
 */
export interface TokenPort {
  /** Stores an API token by its sha256 hash (the token itself is never stored). */
  createToken(token: NewApiToken, now: number): Promise<ApiToken>;

  /** The token with this sha256 hash, revoked or not (`revokedAt` says). */
  findToken(hash: string): Promise<ApiToken | undefined>;

  /** Every token, revoked ones too, oldest first. */
  listTokens(): Promise<ApiToken[]>;

  /**
   * Revokes the token with this id: it is refused from then on (TOKEN_REVOKED). Revoking a revoked token keeps its
   * first revocation time. Undefined when no token has this id.
   */
  revokeToken(id: number, now: number): Promise<ApiToken | undefined>;

  /** How many tokens exist (not revoked); the server enables auth when there is at least one. */
  countTokens(): Promise<number>;
}

/**
 * Server operations (`sluice serve`): readiness, statistics, cron trigger slots, retention.
 */
export interface OperationsPort {
  /**
   * Checks once, without retrying, that the store answers (for readiness probes); throws STORE_UNAVAILABLE when
   * it does not.
   */
  ping(): Promise<void>;

  /**
   * Whether the store's last contact failed for want of a connection, with no success since (always false on
   * SQLite, whose file needs no connection). The
   * server then checks with {@link ping} before serving a request, so requests are answered 503 at once while the
   * store is down instead of waiting for it.
   */
  isUnreachable(): boolean;

  /**
   * Counts and durations of runs and steps of a pipeline created at or after `since` (epoch ms); with
   * `series`, also per time bucket (for charts).
   */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats>;
  /**
   * One turn of the stats fold at `now` (the leader's clock): folds finished runs into the stats rollup up to
   * `now - lagMs`, about `maxRuns` runs at a time (src/store/stats/rollup.ts). Call again while `done` is false.
   */
  foldStats(now: number, options?: FoldOptions): Promise<FoldReport>;
  /** Folds the stats rollup again up to `before` after a prune of `pipeline` removed runs (and their child runs). */
  refoldStats(pipeline: string, before: number): Promise<number>;

  /**
   * Claims one firing slot of a cron trigger (`slot` = the scheduled time, epoch ms). True for exactly one
   * caller per (pipeline, slot) across every process sharing the store.
   */
  claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean>;
  /**
   * Claims one slot of a cron trigger (`trigger`: its time zone and pattern; `slot`: the scheduled time, epoch
   * ms). True for exactly one caller per (pipeline, trigger, slot) across every process sharing the store.
   */
  claimCronSlot(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean>;
  /** The latest slot of the cron trigger that a process claimed, where catch-up starts; undefined when none. */
  lastCronSlot(pipeline: string, trigger: string): Promise<number | undefined>;
  /**
   * Removes finished top-level runs that ended before `request.before`, with their child runs and everything
   * they own (steps, attempts, events, logs, item results, decisions, cached outputs), in batches; failed runs
   * only with `deadLetters`. Returns the artifacts only removed runs named, for the engine to delete.
   */
  pruneRuns(request: PruneRequest): Promise<PruneResult>;
}

/**
 * The whole store: every piece of durable state goes through these ports. Each backend owns its connections and
 * transactions; each method is one atomic unit of work.
 */
export interface Store extends RunPort, ReadPort, DatasetPort, TokenPort, OperationsPort, AttributeValueStore, EvalStore, FlowPort {
  /** Durable waits (sleep, wait_for_event, approval deadlines) and the events they wait for. */
  readonly waits: WaitPort;
}
