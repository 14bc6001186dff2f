import type { CacheExplain, CacheParts, FileHashes } from '../core/cache-key.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { ErrorRecord } from '../core/errors.js';
import type { Pipeline, RunStatus, StepStatus } from '../core/model.js';
import type { RewindRequest, SpawnRequest, StepItem, StepUsage } from '../steps/step-type.js';
import type { AttributeValueStore } from './attributes.js';
import type { EvalStore } from './evals.js';
import type { PruneRequest, PruneResult } from './retention/prune.js';

/**
 * The store port: every piece of durable state goes through these methods. Each backend owns its
 * connections and transactions; each method is one atomic unit of work.
 */
export interface Store extends AttributeValueStore, EvalStore {
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
  listPipelines(): Promise<StoredPipeline[]>;
  listPipelineVersions(name: string): Promise<StoredPipeline[]>;
  /** Forgets every cached step output of the pipeline (all versions). Returns how many were dropped. */
  resetPipelineCache(name: string): Promise<number>;

  /**
   * Creates runs with their steps and first attempts in one transaction. With `claimNext`, the same
   * transaction leases available attempts to an in-process worker (enqueue-to-start without a second commit).
   */
  createRuns(requests: CreateRunRequest[], now: number, claimNext?: ClaimRequest): Promise<CreatedRuns>;
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  listSteps(runId: string): Promise<StepRecord[]>;
  listAttempts(runId: string, step?: string): Promise<AttemptRecord[]>;
  /** Outputs of the named steps of a run (missing or unfinished steps are absent). */
  getStepOutputs(runId: string, names: string[]): Promise<Record<string, unknown>>;
  /**
   * Events in id order. Ids only grow, but on a backend with `concurrentWriters` (PostgreSQL) a transaction may
   * commit an event after another committed a higher id: a reader paging by `afterId` may re-read a short window.
   */
  listEvents(filter: EventFilter): Promise<RunEvent[]>;
  appendLogs(lines: LogLine[]): Promise<void>;
  listLogs(runId: string, step?: string): Promise<LogLine[]>;
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
  /** Every decision of a run (gates' and people's), oldest first. */
  listDecisions(runId: string): Promise<GateDecisionRecord[]>;
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
  /** Failed runs (dead letters), newest first. */
  listDeadLetters(limit: number): Promise<RunRecord[]>;

  // Datasets: named collections of JSON object records keyed by id (SQLite: sqlite/datasets.ts, PostgreSQL:
  // postgres/pg-datasets.ts). Records reach the store already validated and passed through any ingest pipeline.

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

  /**
   * Optional (backends with `capabilities.listenNotify`): calls `listener` whenever a transaction of any
   * process made attempts available, so idle workers claim at once instead of at their next poll. The
   * subscription survives lost connections (it reconnects and then calls `listener` once, since wake-ups
   * sent meanwhile are gone). Resolves to a function that unsubscribes. Workers keep polling as a fallback.
   */
  subscribeWakeups?(listener: () => void): Promise<() => Promise<void>>;
  /**
   * Optional (backends shared by several processes): campaigns for leadership of the store, which one process
   * holds at a time; the leader reaps expired leases. `onChange` is called when this process starts or stops
   * leading (leadership moves within seconds when the leader's process or connection dies). Resolves, after the
   * first try, to a function that stops campaigning (and resigns). A backend without it has one process, which leads.
   */
  campaign?(onChange: (leading: boolean) => void): Promise<() => Promise<void>>;
  /**
   * Optional (backends shared by processes on several hosts): artifacts kept in the store itself, which every
   * worker of the store reads. The engine uses it unless told otherwise; a backend without it keeps artifacts
   * in a folder (SQLite: beside its file).
   */
  artifactStore?(): ArtifactStore;

  // Server features (`sluice serve`). Optional so that a backend without them still runs pipelines; the server
  // answers NOT_SUPPORTED (501) for a feature its store lacks. SQLite: src/store/sqlite/operations.ts.

  /**
   * Checks once, without retrying, that the store answers (for readiness probes); throws STORE_UNAVAILABLE when
   * it does not. A backend without it is probed with a small read.
   */
  ping?(): Promise<void>;
  /**
   * Whether the store's last contact failed for want of a connection, with no success since (PostgreSQL). The
   * server then checks with {@link ping} before serving a request, so requests are answered 503 at once while the
   * store is down instead of waiting for it.
   */
  isUnreachable?(): boolean;
  /** The largest event id (0 when there is none), where live streams start. */
  latestEventId?(): Promise<number>;
  /** Attempts queued and available now or later (not held by a paused run). */
  queueDepth?(): Promise<number>;
  /**
   * Optional: attempts queued per pipeline (pipelines with none are left out), and when the oldest of them that
   * is ready (not delayed) became claimable, epoch ms (null when all are delayed).
   */
  queueStats?(now: number): Promise<Array<{ pipeline: string; depth: number; oldestReadyAt: number | null }>>;
  /** Optional: the W3C `traceparent` a run was started with, null when none (or no such run). */
  runTraceparent?(runId: string): Promise<string | null>;
  /**
   * Counts and durations of runs and steps of a pipeline created at or after `since` (epoch ms); with
   * `series`, also per time bucket (for charts).
   */
  pipelineStats?(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats>;
  /** Stores an API token by its sha256 hash (the token itself is never stored). */
  createToken?(token: NewApiToken, now: number): Promise<ApiToken>;
  /** The token with this sha256 hash, revoked or not (`revokedAt` says). */
  findToken?(hash: string): Promise<ApiToken | undefined>;
  /** Every token, revoked ones too, oldest first. */
  listTokens?(): Promise<ApiToken[]>;
  /**
   * Revokes the token with this id: it is refused from then on (TOKEN_REVOKED). Revoking a revoked token keeps its
   * first revocation time. Undefined when no token has this id.
   */
  revokeToken?(id: number, now: number): Promise<ApiToken | undefined>;
  /** How many tokens exist (not revoked); the server enables auth when there is at least one. */
  countTokens?(): Promise<number>;
  /**
   * Claims one firing slot of a cron trigger (`slot` = the scheduled time, epoch ms). True for exactly one
   * caller per (pipeline, slot) across every process sharing the store.
   */
  claimTriggerSlot?(pipeline: string, slot: number, now: number): Promise<boolean>;
  /**
   * Claims one slot of a cron trigger (`trigger`: its time zone and pattern; `slot`: the scheduled time, epoch
   * ms). True for exactly one caller per (pipeline, trigger, slot) across every process sharing the store.
   */
  claimCronSlot?(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean>;
  /** The latest slot of the cron trigger that a process claimed, where catch-up starts; undefined when none. */
  lastCronSlot?(pipeline: string, trigger: string): Promise<number | undefined>;
  /**
   * Removes finished top-level runs that ended before `request.before`, with their child runs and everything
   * they own (steps, attempts, events, logs, item results, decisions, cached outputs), in batches; failed runs
   * only with `deadLetters`. Returns the artifacts only removed runs named, for the engine to delete.
   */
  pruneRuns?(request: PruneRequest): Promise<PruneResult>;
}

export type ApiRole = 'viewer' | 'operator' | 'admin';

export interface NewApiToken {
  /** sha256 hex of the token. */
  hash: string;
  role: ApiRole;
  name: string | null;
  /** Epoch ms after which the token is refused; null = never. */
  expiresAt: number | null;
}

export interface ApiToken extends NewApiToken {
  id: number;
  createdAt: number;
  /** Epoch ms when the token was revoked; null while it is valid. */
  revokedAt: number | null;
}

/** Durations are milliseconds; percentiles by nearest rank, null when nothing finished. */
export interface DurationStats {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface PipelineStats {
  pipeline: string;
  since: number;
  runs: { byStatus: Record<string, number>; duration: DurationStats };
  steps: Array<{
    name: string;
    byStatus: Record<string, number>;
    duration: DurationStats;
    attempts: number;
    tokensIn: number;
    tokensOut: number;
    cost: number;
  }>;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  /** Present when asked for with {@link SeriesOptions}: equal time buckets from `since` to `until`, oldest first. */
  series?: StatsBucket[];
}

/** Splits `[since, until)` into `buckets` equal spans; runs fall into the span of their creation time. */
export interface SeriesOptions {
  buckets: number;
  until: number;
}

/** Runs created in `[start, end)`: counts by status, run durations, and their attempts' tokens and cost. */
export interface StatsBucket {
  start: number;
  end: number;
  byStatus: Record<string, number>;
  duration: DurationStats;
  tokensIn: number;
  tokensOut: number;
  cost: number;
}

export interface StoreCapabilities {
  /** Cross-process wake-ups without polling (LISTEN/NOTIFY). */
  listenNotify: boolean;
  /** Row locks that other claimers skip. */
  skipLocked: boolean;
  /** Several processes may write at once without serializing on one lock. */
  concurrentWriters: boolean;
}

export interface PipelineSource {
  text?: string;
  file?: string;
}

export interface StoredPipeline {
  name: string;
  version: number;
  hash: string;
  definition: Pipeline;
  source: string | null;
  sourceFile: string | null;
  createdAt: number;
}

export interface CreateRunRequest {
  pipeline: StoredPipeline;
  input: unknown;
  /** Returns the existing run when the key was used for this pipeline in the last 24 h. */
  idempotencyKey?: string;
  /** Default: 0. Higher is claimed first. */
  priority?: number;
  /** Delayed start, epoch ms. */
  runAt?: number;
  /** Steps to run (already closed over their dependencies); the others are skipped. Default: all. */
  selection?: string[];
  /** Bypass the step cache. */
  force?: boolean;
  /** Overrides the pipeline's max_parallel. */
  maxParallel?: number;
  id?: string;
  /** The step of another run that started this one (a `pipeline` step). */
  parent?: { runId: string; step: string };
  /**
   * The rendered `concurrency_key` of each keyed step (step name -> key). A keyed step missing here uses its
   * key's text unrendered, which only limits more (every run then shares one key).
   */
  concurrencyKeys?: Record<string, string>;
  /** The W3C `traceparent` the run was started with (see Store.runTraceparent). Default: none. */
  traceparent?: string;
}

export interface CreatedRun {
  run: RunRecord;
  /** False when an idempotency key matched an existing run. */
  created: boolean;
  events: RunEvent[];
}

export interface CreatedRuns {
  runs: CreatedRun[];
  /** What `claimNext` leased, with the events of those claims. */
  claimed: ClaimBatch;
}

export interface RunRecord {
  id: string;
  pipeline: string;
  version: number;
  status: RunStatus;
  input: unknown;
  priority: number;
  force: boolean;
  maxParallel: number;
  selection: string[] | null;
  idempotencyKey: string | null;
  /** Set for a child run started by a `pipeline` step. */
  parentRunId: string | null;
  parentStep: string | null;
  error: ErrorRecord | null;
  runAt: number;
  deadlineAt: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface StepRecord {
  runId: string;
  name: string;
  status: StepStatus;
  attempts: number;
  output: unknown;
  error: ErrorRecord | null;
  cacheKey: string | null;
  /** Why the step ran or was cached (steps whose cache is on, once settled); null otherwise. */
  cacheExplain: CacheExplain | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A stored step result found by its cache key. */
export interface CacheHit {
  output: unknown;
  /** The run that produced it. */
  runId: string;
  /** Content hashes of the step's declared outputs when it was recorded (null when it declared none). */
  outputs: FileHashes | null;
}

export type AttemptStatus =
  | 'spawned'
  | 'blocked'
  | 'rewound'
  | 'queued'
  | 'held'
  | 'running'
  | 'succeeded'
  | 'cached'
  | 'skipped'
  | 'failed'
  | 'expired'
  | 'cancelled';

export interface AttemptRecord {
  id: number;
  runId: string;
  step: string;
  number: number;
  status: AttemptStatus;
  owner: string | null;
  queuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  processingMs: number | null;
  error: ErrorRecord | null;
  usage: StepUsage | null;
}

/** Which runs `listRuns` returns, newest first (created_at DESC, id DESC). */
export interface RunFilter {
  pipeline?: string;
  status?: RunStatus;
  /** Default: 50. */
  limit?: number;
  /** Only runs after this one in that order (keyset paging; see run-cursor.ts). Default: from the newest. */
  after?: { createdAt: number; id: string };
}

export interface EventFilter {
  runId?: string;
  pipeline?: string;
  afterId?: number;
  limit?: number;
}

export type EventType =
  | 'run.queued'
  | 'run.started'
  | 'run.paused'
  | 'run.resumed'
  | 'run.waiting'
  | 'run.succeeded'
  | 'run.failed'
  | 'run.cancelled'
  | 'step.queued'
  | 'step.started'
  | 'step.retrying'
  | 'step.succeeded'
  | 'step.cached'
  | 'step.skipped'
  | 'step.failed'
  | 'step.blocked'
  | 'step.cancelled'
  | 'gate.decided'
  | 'checkpoint.created';

export interface RunEvent {
  id: number;
  runId: string;
  pipeline: string;
  step: string | null;
  type: EventType;
  data: Record<string, unknown> | null;
  at: number;
}

export interface LogLine {
  runId: string;
  step: string;
  attempt: number;
  stream: string;
  line: string;
  at: number;
}

/** An attempt leased to a worker, with what it needs to execute. */
export interface ClaimedAttempt {
  id: number;
  runId: string;
  step: string;
  number: number;
  /** Fencing token: the result must carry it back. */
  fence: number;
  pipeline: string;
  version: number;
  input: unknown;
  force: boolean;
  leaseExpiresAt: number;
  /** Feedback of the gate that asked for this attempt, if any. */
  feedback?: unknown;
}

export interface ClaimRequest {
  owner: string;
  limit: number;
  leaseMs: number;
  only?: { runId?: string };
}

export interface ClaimBatch {
  attempts: ClaimedAttempt[];
  events: RunEvent[];
}

/**
 * How an attempt ended. `blocked`: the run waits for a human on this step. `rewound`: the step asked for
 * an upstream step to run again (a gate's retry).
 */
export type AttemptOutcome = 'succeeded' | 'cached' | 'skipped' | 'failed' | 'blocked' | 'rewound' | 'spawned';

export interface AttemptResult {
  attemptId: number;
  fence: number;
  owner: string;
  outcome: AttemptOutcome;
  output?: unknown;
  error?: ErrorRecord;
  cacheKey?: string;
  /** Whether the step may store its output in the cache. */
  cacheable?: boolean;
  /** The parts of `cacheKey`, stored with the cached output to explain later misses. */
  cacheParts?: CacheParts;
  /** Content hashes of the declared outputs, stored with the cached output. */
  cacheOutputs?: FileHashes;
  /** Why the step ran or was cached, stored on the step. */
  cacheExplain?: CacheExplain;
  processingMs: number;
  /** For failures: delay before the next try, chosen by the engine from the retry policy. */
  retryDelayMs?: number;
  /** For failures: whether the error may be retried. */
  retryable?: boolean;
  /** Model usage the step reported. */
  usage?: StepUsage;
  /** For `rewound`: which step to run again, with what feedback, within what budget. */
  rewind?: RewindRequest;
  /** For `spawned`: the child run to start; the step ends when the child run ends. */
  spawn?: SpawnRequest;
  /** A gate's decision, stored in the audit table and emitted as `gate.decided`. */
  decision?: GateDecision;
}

/** Proof that a worker holds an attempt: what fenced writes check. */
export interface AttemptLease {
  attemptId: number;
  fence: number;
  owner: string;
}

export interface HumanDecision {
  decision: 'approve' | 'reject';
  comment?: string;
  /** Who decided (a token name, a user). */
  by?: string;
}

/** What a gate decided and why. */
export interface GateDecision {
  decision: 'proceed' | 'retry' | 'block';
  /** Schema validation problems. */
  validations: unknown[];
  /** Each rule checked, `{ name, passed, severity, message? }` (message when it failed). */
  rules: unknown[];
  /** For retry: the step to run again. */
  retryStep?: string;
  reason?: string;
}

/**
 * A row of the decisions audit: a gate's decision (`kind: 'gate'`: proceed, retry or block, with every rule it
 * checked), or a person's on a blocked step (`kind: 'human'`: approve or reject, with their comment and `by`).
 */
export interface GateDecisionRecord extends Omit<GateDecision, 'decision'> {
  id: number;
  runId: string;
  step: string;
  attempt: number;
  kind: 'gate' | 'human';
  decision: GateDecision['decision'] | HumanDecision['decision'];
  /** A person's comment (`kind: 'human'`). */
  comment?: string;
  /** Who decided (`kind: 'human'`): a token's name or id, an OS user, `cli` or `api`. */
  by?: string;
  /** Retries this gate may still ask for in this run. */
  budgetLeft: number | null;
  at: number;
}

export interface CompletionBatch {
  /** Ids of results applied. */
  accepted: number[];
  /** Ids of results rejected as stale (lease lost, run cancelled). */
  rejected: number[];
  events: RunEvent[];
  /** Attempts newly made available (the worker may claim again at once). */
  queued: number;
  /** What `claimNext` leased. */
  claimed: ClaimedAttempt[];
}

export interface ReapResult {
  expired: number;
  timedOutRuns: number;
  events: RunEvent[];
}

export type RunAction = 'pause' | 'resume' | 'cancel' | 'retry';

export interface TransitionResult {
  run: RunRecord;
  events: RunEvent[];
}

/** A named collection of records. */
export interface DatasetRecord {
  name: string;
  /** Pipeline every written record passes through before it is stored. */
  ingestPipeline?: string;
  createdAt: number;
}

/** A record to write. `data` must be a JSON object. */
export interface NewDataRecord {
  id: string;
  data: Record<string, unknown>;
}

export interface DataRecord extends NewDataRecord {
  createdAt: number;
  updatedAt: number;
}

export interface RecordPage {
  /** Only records whose id sorts after this one. */
  after?: string | undefined;
  /** Default: 100. */
  limit?: number | undefined;
}

export type { PruneRequest, PruneResult } from './retention/prune.js';
