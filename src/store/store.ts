import type { ErrorRecord } from '../core/errors.js';
import type { Pipeline, RunStatus, StepStatus } from '../core/model.js';
import type { StepUsage } from '../steps/step-type.js';

/**
 * The store port: every piece of durable state goes through these methods. Each backend owns its
 * connections and transactions; each method is one atomic unit of work.
 */
export interface Store {
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
  listEvents(filter: EventFilter): Promise<RunEvent[]>;
  appendLogs(lines: LogLine[]): Promise<void>;
  listLogs(runId: string, step?: string): Promise<LogLine[]>;
  /** A cached output for the key, if a succeeded step produced one. */
  lookupCache(pipeline: string, cacheKey: string): Promise<{ output: unknown } | undefined>;

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
  /** Failed runs (dead letters), newest first. */
  listDeadLetters(limit: number): Promise<RunRecord[]>;
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
  startedAt: number | null;
  finishedAt: number | null;
}

export type AttemptStatus =
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

export interface RunFilter {
  pipeline?: string;
  status?: RunStatus;
  limit?: number;
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

export type AttemptOutcome = 'succeeded' | 'cached' | 'skipped' | 'failed';

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
  processingMs: number;
  /** For failures: delay before the next try, chosen by the engine from the retry policy. */
  retryDelayMs?: number;
  /** For failures: whether the error may be retried. */
  retryable?: boolean;
  /** Model usage the step reported. */
  usage?: StepUsage;
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
