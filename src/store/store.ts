import type { CacheExplain, CacheParts, FileHashes } from '../core/cache-key.js';
import type { ErrorRecord } from '../core/errors.js';
import type { FlowRequest } from '../core/flow-control.js';
import type { FlowOutcome } from './flow/flow-start.js';
import type { Pipeline, RunStatus, StepStatus } from '../core/model.js';
import type { RewindRequest, SpawnRequest, StepUsage } from '../core/step-results.js';
import type { WaitRequest } from '../core/waits.js';

export type { DatasetPort, OperationsPort, ReadPort, RunPort, Store, TokenPort } from './ports.js';

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
  /** Several processes may write at once without serializing on one lock. */
  concurrentWriters: boolean;
  /**
   * Several processes elect one leader among them ({@link RunPort.campaign}); without it the one process leads
   * at once.
   */
  leaderElection: boolean;
  /**
   * The store's own database keeps artifacts (PostgreSQL: tables `artifacts` and `artifact_chunks`), read by
   * every worker of the store; the artifact side opens them (src/artifacts/store-artifacts.ts).
   */
  artifactTables: boolean;
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
  /** The pipeline's flow rules with their keys rendered for this run (see core/flow-control.ts). Default: none. */
  flow?: FlowRequest;
}

export interface CreatedRun {
  run: RunRecord;
  /** False when an idempotency key matched an existing run. */
  created: boolean;
  events: RunEvent[];
  /** What the pipeline's flow rules did to this start (delayed, debounced, skipped...), when it has any. */
  flow?: FlowOutcome;
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
  | 'waiting'
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
  | 'step.waiting'
  | 'step.woken'
  | 'step.timed_out'
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
  /**
   * Outputs of steps of this run, as stored JSON text by step name, that the transaction which leased this attempt
   * had just recorded: the executor takes these instead of reading them from the store. Several attempts may share
   * the object; it is only read.
   */
  upstream?: Readonly<Record<string, string>>;
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
export type AttemptOutcome = 'succeeded' | 'cached' | 'skipped' | 'failed' | 'blocked' | 'rewound' | 'spawned' | 'waiting';

/** A result carries the lease of its attempt: a result whose fence is stale is rejected. */
export interface AttemptResult extends AttemptLease {
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
  /** For `waiting`: what the step waits for and until when; it is run again then, holding no lease meanwhile. */
  wait?: WaitRequest;
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
  /** The reviewer's data, checked against an approval's `with.response` schema; kept in the step output. */
  response?: unknown;
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
