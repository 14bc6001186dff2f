import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { TemplateEncoder } from '../core/expressions.js';
import type { JsonSchema } from '../core/model.js';
import type { RewindRequest, SpawnRequest, StepItem, StepUsage } from '../core/step-results.js';
import type { ReceivedEvent, StepWait, WaitRequest } from '../core/waits.js';

export type { RewindRequest, SpawnRequest, StepItem, StepUsage } from '../core/step-results.js';

export type LogStream = 'stdout' | 'stderr' | 'info' | 'warn' | 'error';

/** What a step gets while it executes. A step never touches the store. */
export interface StepContext {
  run: { id: string; attempt: number; pipeline: string; version: number };
  /** Name of the step being executed. */
  step: string;
  /** The run input. */
  input: unknown;
  /** Outputs of upstream steps by name (null for a failed `on_failure: continue` step). */
  steps: Record<string, unknown>;
  /** Aborted on timeout, cancel, or lease loss; the step must stop promptly. */
  signal: AbortSignal;
  /** Appends a line to the step's log. */
  log(stream: LogStream, line: string): void;
  secrets: Record<string, string>;
  /** Directory that relative paths in the definition resolve against (the pipeline file's folder). */
  baseDir: string;
  /** Injected clock, epoch milliseconds. */
  now(): number;
  /** Records model usage (tokens, cost) of this attempt; calls add up. */
  reportUsage(usage: StepUsage): void;
  /** Feedback of a downstream gate that asked this step to run again (absent otherwise). */
  feedback?: unknown;
  /** Content-addressed blobs: pass large data by reference instead of inline. */
  artifacts: ArtifactAccess;
  /** Per-item checkpoints of this step in this run (used by `map`); absent outside the engine. */
  items?: ItemCheckpoints;
  /** Per-minute budgets shared by every worker of the store (an LLM provider's rpm/tpm); absent outside the engine. */
  rateLimit?: SharedRateLimit;
  /** The run was started with `force`: nothing is reused (the step cache, an attribute pipeline's input hashes). */
  /**
   * The W3C `traceparent` of this attempt's span, when tracing is on: `http` and `llm` steps send it as a header,
   * `command` steps as `TRACEPARENT` in the process environment. Default: none.
   */
  traceparent?: string;
  force?: boolean;
  /**
   * The lease this attempt runs under; absent outside the engine. A step that writes through a port of its own
   * (an attribute pipeline's values) checks it before each write, so an attempt that lost its lease writes nothing.
   */
  lease?: AttemptFence;
  /** For step types that wait ({@link StepType.waits}): the wait this attempt was woken from, and the events. */
  waits?: WaitAccess;
}

/** What a waiting step (`sleep`, `wait_for_event`) sees of its wait and of the events the store received. */
export interface WaitAccess {
  /** The wait this attempt was woken from; undefined when the step starts waiting now. */
  readonly current: StepWait | undefined;
  /** Events named `name` received from `since` on, oldest first, at most `limit`. */
  eventsSince(name: string, since: number, limit: number): Promise<ReceivedEvent[]>;
  /** Takes `eventId` for this wait unless it already took one; returns the event it holds. */
  claim(eventId: number): Promise<ReceivedEvent | undefined>;
  /** The event this wait took, when it took one. */
  matched(): Promise<ReceivedEvent | undefined>;
  /** Marks the wait over (the step returns its output now; `emit` names the event to record): a later start of the step waits anew. */
  finish(emit?: 'step.woken' | 'step.timed_out'): Promise<void>;
}

/** Proof that this attempt holds its lease, as fenced writes check it. */
export interface AttemptFence {
  readonly attemptId: number;
  readonly fence: number;
  readonly owner: string;
  /** Throws (LEASE_LOST, or the reason the attempt was cancelled) once the attempt may no longer write. */
  check(): void;
}

/** A turn granted by a rate limit; `settle` replaces the estimated tokens with the counted ones. */
export interface RateTurn {
  settle(tokens: number): void;
}

export interface SharedRateLimit {
  /** Waits until `key`'s budget has room for one request of `tokens` tokens, then takes it. */
  acquire(key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, signal: AbortSignal, onWait?: (ms: number) => void): Promise<RateTurn>;
}

/** Durable per-item results of a step: what a retry or a resumed run does not redo. */
export interface ItemCheckpoints {
  load(): Promise<StepItem[]>;
  /** Records results; fenced: fails with LEASE_LOST when this attempt no longer holds its lease. */
  save(items: StepItem[]): Promise<void>;
}

/**
 * What steps may do with artifacts: put (bytes, text or a stream) and get (whole, as JSON, or as a stream) by
 * sha256, and ask whether one is stored; see {@link ArtifactStore}. Deleting is not a step's business.
 */
export type ArtifactAccess = Pick<ArtifactStore, 'put' | 'putJson' | 'get' | 'getJson' | 'stream' | 'has'>;

/**
 * The plugin contract of a step type: a name, a JSON Schema for its resolved `with`, and `execute`.
 * `execute` returns the step's output (any JSON value) or throws; a thrown `SluiceError` keeps its code.
 */
export interface StepType<Config = Record<string, unknown>> {
  type: string;
  /** JSON Schema of `with`. String values may be `${{ }}` templates, so keep it lenient on types. */
  configSchema: JsonSchema;
  execute(ctx: StepContext, config: Config): Promise<unknown>;
  /** Keys of `with` the engine leaves as written (the step renders them itself, e.g. once per item). */
  rawConfigKeys?: readonly string[];
  /**
   * What a result depends on beyond its resolved config: its code and the files it reads. Called before the
   * cache is looked up, only for steps whose cache is on; what it returns joins the cache key. Optional: most
   * step types depend on their config alone.
   */
  cacheInputs?(config: Config, ctx: CacheInputsContext): StepCacheInputs | Promise<StepCacheInputs>;
  /**
   * How `${{ }}` values are written into the strings of `with`, given `with` as written; undefined renders them
   * as plain text. `command` shell-quotes values inside a shell `run`; `http` percent-encodes values in a URL's
   * path and query. Applied wherever the engine renders this step's config (runs, simulate, map, attributes).
   */
  templateEncoder?(written: Record<string, unknown>): TemplateEncoder | undefined;
  /**
   * The type waits durably (`sleep`, `wait_for_event`): it gets {@link StepContext.waits} and may return
   * {@link StepDirective.wait}; its results are never taken from the cache. Default: false.
   */
  waits?: boolean;
}

/** What {@link StepType.cacheInputs} gets. */
export interface CacheInputsContext {
  /** The pipeline file's folder: relative paths resolve against it. */
  baseDir: string;
  /** The step declares `cache.inputs`: list only the files it could not declare (a command's own script). */
  declaredInputs: boolean;
}

/** Code and files a step's result depends on. */
export interface StepCacheInputs {
  /** A fingerprint of the code the step runs (a hash); a change makes the step run again. */
  code?: string;
  /** Absolute paths of files whose content joins the cache key (missing ones are left out). */
  files?: string[];
}

/** Registry of step types by name. */
export type StepRegistry = ReadonlyMap<string, StepType<any>>;

/**
 * What a step may return instead of an output to steer its run: wait for a human (`block`), or run an
 * upstream step again with feedback (`rewind`, used by `gate`). Steps run in the worker's process, so
 * the executor recognizes these by class.
 */
export class StepDirective {
  private constructor(
    readonly kind: 'block' | 'rewind' | 'decided' | 'spawn' | 'wait',
    /** Stored as the step's output while it waits (block) or as the decision (rewind). */
    readonly detail: Record<string, unknown>,
    readonly rewind?: RewindRequest,
    readonly spawn?: SpawnRequest,
    readonly wait?: WaitRequest,
  ) {}

  /** The same directive with another `detail` (e.g. with secret values blanked out). */
  withDetail(detail: Record<string, unknown>): StepDirective {
    return new StepDirective(this.kind, detail, this.rewind, this.spawn, this.wait === undefined ? undefined : { ...this.wait, detail });
  }

  /** The step waits (a time, an event) holding no lease; it is run again at `request.wakeAt` or when woken. */
  static wait(request: WaitRequest): StepDirective {
    return new StepDirective('wait', request.detail, undefined, undefined, request);
  }

  /** Starts a child run of another pipeline; this step ends when the child ends, with its outputs. */
  static spawn(request: SpawnRequest): StepDirective {
    return new StepDirective('spawn', {}, undefined, request);
  }

  /** The step succeeds with `detail` as its output, and `detail.decision` is stored as a gate decision. */
  static decided(detail: Record<string, unknown>): StepDirective {
    return new StepDirective('decided', detail);
  }

  /** The run waits until a human approves or rejects this step (or, with `deadline`, until that time passes). */
  static block(detail: Record<string, unknown>, deadline?: WaitRequest): StepDirective {
    return new StepDirective('block', detail, undefined, undefined, deadline);
  }

  /** Runs `request.to` and everything after it again, passing `request.feedback` to it (`deadline`: for a block once the budget is spent). */
  static rewind(request: RewindRequest, detail: Record<string, unknown>, deadline?: WaitRequest): StepDirective {
    return new StepDirective('rewind', detail, request, undefined, deadline);
  }
}
