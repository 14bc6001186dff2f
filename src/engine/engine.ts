import { SluiceError, ValidationError } from '../core/errors.js';
import { withDependencies } from '../core/graph.js';
import { depthMessage, tooDeepPath } from '../core/json-depth.js';
import type { Pipeline } from '../core/model.js';
import { isTerminalRun } from '../core/state-machine.js';
import { pipelineVersionHash } from '../core/validate.js';
import { Ajv } from 'ajv';
import { DEFAULT_INLINE_LIMIT, type ArtifactStore } from '../artifacts/artifact-store.js';
import { openArtifactStore } from '../artifacts/open-artifact-store.js';
import { CronTriggers } from './cron-triggers.js';
import { parseRetention, PeriodicPrune, pruneRuns, type PruneOptions, type PruneReport } from './retention.js';
import type { StepRegistry } from '../steps/step-type.js';
import { newRunId } from '../store/ids.js';
import { renderConcurrencyKeys } from './concurrency-keys.js';
import type { CreateRunRequest, CreatedRun, HumanDecision, PipelineSource, RunEvent, RunRecord, Store, StoredPipeline, TransitionResult } from '../store/store.js';
import { EventBus, type BatchListener, type EventListener } from './event-bus.js';
import { createAttributeStep } from '../attributes/attribute-step.js';
import { checkAttributeGraph } from '../attributes/ordering.js';
import { AttributeTriggers } from '../attributes/triggers.js';
import type { StepType } from '../steps/step-type.js';
import { Executor } from './executor.js';
import { newOwnerId } from './owner.js';
import { configureSandboxPool } from '../steps/code/sandbox-pool.js';
import { parseByteSize } from '../steps/code/byte-size.js';
import { endOrphanedCommands } from '../steps/command/command-registry.js';
import { endSupervisedCommands } from '../steps/command/supervised-process.js';
import { Worker, type WorkerOptions } from './worker.js';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface EngineOptions {
  store: Store;
  steps: StepRegistry;
  /** Default: the system clock. */
  clock?: Clock;
  /** Values visible as `secrets.<NAME>`; redacted from logs. Default: none. */
  secrets?: Record<string, string>;
  /** Called with errors of background work (claims, heartbeats). Default: printed to stderr. */
  onError?: (err: unknown) => void;
  /**
   * Where artifacts live: an {@link ArtifactStore}, a folder path, `s3://bucket/prefix` (credentials, region and
   * endpoint from the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
   * `SLUICE_S3_ENDPOINT`), or `store` (the store's own tables; PostgreSQL only). Default: the store's own when it
   * has them (PostgreSQL), else `.sluice/artifacts` under the working directory.
   */
  artifacts?: ArtifactStore | string;
  /** A folder for artifacts, as `artifacts: PATH`; `artifacts` wins when both are given. */
  artifactsDir?: string;
  /** Step outputs whose JSON is larger are stored as artifacts and passed by reference. Default: 256 KiB. */
  inlineOutputLimit?: number;
  /** Run inputs whose JSON is larger are refused; pass large data as artifacts. Default: 1 MiB. */
  maxInputBytes?: number;
  /** How long record saves gather before their attribute pipelines run. Default: 1 s. */
  triggerDebounceMs?: number;
  /**
   * Worker threads that run `code` step sandboxes, shared by the whole process (the last engine that sets it
   * wins). Default: env `SLUICE_CODE_WORKERS`, else min(4, cores).
   */
  codeWorkers?: number;
  /**
   * Log bytes kept per attempt; the rest is dropped and counted in one marker line. Default: env
   * `SLUICE_MAX_LOG_BYTES` (bytes, or a size such as `20MiB`), else 10 MiB.
   */
  maxLogBytesPerAttempt?: number;
  /**
   * Store-wide retention: finished runs of pipelines without their own `retention` are pruned once older than
   * this (a duration such as `30d`, or ms). Default: env `SLUICE_RETENTION`, else kept.
   */
  retention?: string | number;
}

export interface StartRunOptions {
  input?: unknown;
  idempotencyKey?: string;
  priority?: number;
  /** Delayed start, epoch ms. */
  runAt?: number;
  /** Run these steps plus their dependencies only. */
  steps?: string[];
  /** Bypass the step cache. */
  force?: boolean;
  maxParallel?: number;
}

/**
 * The engine: registers pipelines, starts and controls runs, and runs a worker in this process.
 * It is a value: several engines may share one process (tests do).
 */
export class Engine {
  readonly store: Store;
  readonly steps: StepRegistry;
  readonly clock: Clock;
  private readonly bus = new EventBus();
  private readonly executor: Executor;
  private readonly onError: (err: unknown) => void;
  private readonly inputValidators = new Map<string, ReturnType<Ajv['compile']>>();
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private worker: Worker | null = null;
  /** Stops what {@link startSchedules} started; close() calls each. */
  private readonly scheduleStops: Array<() => Promise<void>> = [];
  /** Content-addressed blobs shared by this engine's steps. */
  readonly artifacts: ArtifactStore;
  private readonly maxInputBytes: number;
  private readonly maxLogBytesPerAttempt: number | undefined;
  /** Record-save triggers of attribute pipelines (debounced). */
  readonly attributeTriggers: AttributeTriggers;
  /** Values visible to steps as `secrets.<NAME>` (also to in-memory executions: simulate, ingest, evals). */
  readonly secrets: Readonly<Record<string, string>>;
  /** Store-wide retention in ms (EngineOptions.retention); undefined: runs of pipelines without `retention` are kept. */
  readonly defaultRetentionMs: number | undefined;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.secrets = options.secrets ?? {};
    this.attributeTriggers = new AttributeTriggers(
      {
        listPipelines: () => this.store.listPipelines(),
        startAttributeRun: (pipeline, input) => this.startRun(pipeline, { input }),
        onError: (err) => this.onError(err),
      },
      options.triggerDebounceMs,
    );
    const attributeStep = createAttributeStep({
      store: this.store,
      steps: () => this.steps,
      onValuesChanged: (dataset, field, ids) => void this.attributeTriggers.valuesChanged(dataset, field, ids).catch((err) => this.onError(err)),
    });
    this.steps = withStepType(options.steps, attributeStep);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.onError = options.onError ?? ((err) => process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`));
    this.artifacts = typeof options.artifacts === 'object' ? options.artifacts : openArtifactStore(options.artifacts ?? options.artifactsDir, { store: this.store });
    this.maxInputBytes = options.maxInputBytes ?? 1024 * 1024;
    this.defaultRetentionMs =
      options.retention === undefined ? parseRetention(process.env['SLUICE_RETENTION'], 'SLUICE_RETENTION') : parseRetention(String(options.retention), 'retention');
    if (options.codeWorkers !== undefined) configureSandboxPool(options.codeWorkers);
    this.maxLogBytesPerAttempt = options.maxLogBytesPerAttempt ?? logLimitFromEnv();
    this.executor = new Executor({
      store: this.store,
      steps: this.steps,
      artifacts: this.artifacts,
      inlineLimit: options.inlineOutputLimit ?? DEFAULT_INLINE_LIMIT,
      secrets: this.secrets,
      now: () => this.clock.now(),
      log: (attempt, stream, line) => this.worker?.log(attempt, stream, line),
    });
  }

  /**
   * Stores a normalized pipeline; returns the stored version (new only when the definition changed). An
   * attribute pipeline is refused (TARGET_TAKEN, PIPELINE_CYCLE) when another pipeline of its dataset writes
   * its target or when the pipelines would read each other's fields in a cycle.
   */
  async registerPipeline(pipeline: Pipeline, source?: PipelineSource): Promise<StoredPipeline> {
    if (pipeline.attribute && !pipeline.disabled) checkAttributeGraph(pipeline, await this.store.listPipelines());
    return this.store.savePipeline(pipeline, pipelineVersionHash(pipeline), source);
  }

  async requirePipeline(name: string, version?: number): Promise<StoredPipeline> {
    const p = await this.store.getPipeline(name, version);
    if (!p) throw new SluiceError('PIPELINE_NOT_FOUND', `no pipeline named ${name}${version === undefined ? '' : ` with version ${version}`}`);
    return p;
  }

  /** Starts one run of the latest version of `pipeline` (or of the given stored version). */
  async startRun(pipeline: string | StoredPipeline, options: StartRunOptions = {}): Promise<CreatedRun> {
    const [created] = await this.startRuns(pipeline, [options]);
    return created!;
  }

  /** Starts many runs of one pipeline in one transaction. */
  async startRuns(pipeline: string | StoredPipeline, runs: StartRunOptions[]): Promise<CreatedRun[]> {
    const stored = typeof pipeline === 'string' ? await this.requirePipeline(pipeline) : pipeline;
    if (stored.definition.disabled) throw new SluiceError('PIPELINE_DISABLED', `pipeline ${stored.name} is disabled`);
    const requests: CreateRunRequest[] = runs.map((o) => {
      this.checkInput(stored, o.input ?? null);
      checkRunTiming(o);
      const selection = o.steps && o.steps.length > 0 ? [...withDependencies(stored.definition, o.steps)] : undefined;
      return {
        pipeline: stored,
        input: o.input ?? null,
        ...(o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey }),
        ...(o.priority === undefined ? {} : { priority: o.priority }),
        ...(o.runAt === undefined ? {} : { runAt: o.runAt }),
        ...(selection === undefined ? {} : { selection }),
        ...(o.force === undefined ? {} : { force: o.force }),
        ...(o.maxParallel === undefined ? {} : { maxParallel: o.maxParallel }),
      };
    });
    if (stored.definition.steps.some((s) => s.concurrencyKey !== null)) await this.renderKeys(stored, requests);
    const created = await this.store.createRuns(requests, this.clock.now(), this.worker?.claimRequest());
    for (const c of created.runs) this.bus.publish(c.events);
    this.worker?.adopt(created.claimed);
    return created.runs;
  }

  /** Gives each new run its id now, so that its steps' concurrency keys can read `run.id`, and renders them. */
  private async renderKeys(stored: StoredPipeline, requests: CreateRunRequest[]): Promise<void> {
    for (const req of requests) {
      req.id = newRunId(this.clock.now());
      const keys = await renderConcurrencyKeys(stored.definition, { id: req.id, pipeline: stored.name, version: stored.version, input: req.input });
      if (keys) req.concurrencyKeys = keys;
    }
  }

  private checkInput(stored: StoredPipeline, input: unknown): void {
    const deep = tooDeepPath(input);
    if (deep) throw new SluiceError('INPUT_INVALID', `input of pipeline ${stored.name} is ${depthMessage('input', deep)}`);
    const size = Buffer.byteLength(JSON.stringify(input ?? null));
    if (size > this.maxInputBytes) {
      throw new SluiceError('INPUT_TOO_LARGE', `input of pipeline ${stored.name} is ${size} bytes, more than the ${this.maxInputBytes} allowed; store large data as an artifact and pass its reference`);
    }
    const schema = stored.definition.input;
    if (schema === null) return;
    const key = `${stored.name}@${stored.version}`;
    let validate = this.inputValidators.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.inputValidators.set(key, validate);
    }
    if (!validate(input)) {
      const issues = (validate.errors ?? []).map((e) => ({ path: `input${e.instancePath.replace(/\//g, '.')}`, message: e.message ?? 'is invalid' }));
      const err = new ValidationError(issues);
      throw new SluiceError('INPUT_INVALID', `input of pipeline ${stored.name} is invalid:\n${err.message}`, { details: issues });
    }
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.store.getRun(id);
  }

  async requireRun(id: string): Promise<RunRecord> {
    const run = await this.store.getRun(id);
    if (!run) throw new SluiceError('RUN_NOT_FOUND', `no run ${id}`);
    return run;
  }

  pause(runId: string): Promise<TransitionResult> {
    return this.control(runId, 'pause');
  }

  resume(runId: string): Promise<TransitionResult> {
    return this.control(runId, 'resume');
  }

  cancel(runId: string): Promise<TransitionResult> {
    return this.control(runId, 'cancel');
  }

  /** Re-runs the failed, cancelled and never-started steps of a failed or cancelled run. */
  retry(runId: string): Promise<TransitionResult> {
    return this.control(runId, 'retry');
  }

  /** Discards the outputs of `step` and its descendants and runs them again. */
  async rollback(runId: string, step: string): Promise<TransitionResult> {
    const result = await this.store.rollbackRun(runId, step, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  /** A human's decision on a blocked step (an `approval`, or a `gate` that blocked). */
  async decide(runId: string, step: string, decision: HumanDecision): Promise<TransitionResult> {
    const result = await this.store.decideStep(runId, step, decision, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  private async control(runId: string, action: 'pause' | 'resume' | 'cancel' | 'retry'): Promise<TransitionResult> {
    const result = await this.store.controlRun(runId, action, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  private afterTransition(result: TransitionResult): void {
    this.bus.publish(result.events);
    this.worker?.abortEnded(result.events);
    this.worker?.wake();
  }

  /**
   * Re-queues the in-flight attempts of dead workers on this host at once, instead of waiting for lease expiry,
   * once the `command` processes those workers left running here are gone.
   */
  async reapNow(): Promise<void> {
    const { isOwnerDead } = await import('./owner.js');
    await endOrphanedCommands();
    const result = await this.store.reap(this.clock.now(), isOwnerDead);
    this.bus.publish(result.events);
  }

  /** Listens to events committed by this process. */
  subscribe(listener: EventListener): () => void {
    return this.bus.subscribe(listener);
  }

  /** Listens to events committed by this process, one call per commit with all of its events. */
  subscribeBatches(listener: BatchListener): () => void {
    return this.bus.subscribeBatches(listener);
  }

  /** Starts the in-process worker (one per engine). */
  startWorker(options: WorkerOptions = {}): Worker {
    if (this.worker) throw new SluiceError('INTERNAL', 'this engine already runs a worker');
    this.worker = new Worker(
      {
        store: this.store,
        executor: this.executor,
        owner: newOwnerId(),
        now: () => this.clock.now(),
        publish: (events) => this.bus.publish(events),
        onError: this.onError,
      },
      { ...(this.maxLogBytesPerAttempt === undefined ? {} : { maxLogBytesPerAttempt: this.maxLogBytesPerAttempt }), ...options },
    );
    this.worker.start();
    return this.worker;
  }

  /** Whether this process leads the store: its worker's say, else true (a process with no worker claims slots alone). */
  isLeading(): boolean {
    return this.worker?.leading ?? true;
  }

  /**
   * Prunes finished runs older than each pipeline's `retention` (else the store-wide default; `olderThanMs`
   * overrides both) with everything they own and the artifacts only they named. See src/engine/retention.ts.
   */
  prune(options: PruneOptions = {}): Promise<PruneReport> {
    return pruneRuns({ store: this.store, artifacts: this.artifacts, now: () => this.clock.now(), defaultRetentionMs: this.defaultRetentionMs }, options);
  }

  /**
   * Starts what the leading process of the store does besides reaping: firing cron triggers and pruning on a
   * timer (`pruneEveryMs`, default 1 h), each only while {@link isLeading}. Returns a function that stops them.
   */
  startSchedules(options: { cron?: boolean; pruneEveryMs?: number; onError?: (err: unknown) => void; onPruned?: (report: PruneReport) => void } = {}): () => Promise<void> {
    const onError = options.onError ?? this.onError;
    const isLeading = () => this.isLeading();
    const cron = options.cron === false ? undefined : new CronTriggers(this, { onError, isLeading });
    const deps = { store: this.store, artifacts: this.artifacts, now: () => this.clock.now(), defaultRetentionMs: this.defaultRetentionMs };
    const prune = new PeriodicPrune(deps, { isLeading, onError, ...(options.pruneEveryMs === undefined ? {} : { everyMs: options.pruneEveryMs }), ...(options.onPruned ? { onPruned: options.onPruned } : {}) });
    void cron?.start();
    prune.start();
    const stop = async () => {
      const i = this.scheduleStops.indexOf(stop);
      if (i >= 0) this.scheduleStops.splice(i, 1);
      cron?.stop();
      await prune.stop();
    };
    this.scheduleStops.push(stop);
    return stop;
  }

  async stopWorker(graceMs?: number): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.stop(graceMs);
  }

  /**
   * Stops the in-process worker at once (the process was told to stop, by SIGINT or SIGTERM): its steps are
   * aborted, the processes of its `command` steps are ended (SIGTERM, then SIGKILL after their `kill_grace`) and,
   * once they are gone, its unfinished attempts are handed back: claimable at once by any worker, the run goes
   * on where it stopped.
   */
  async interruptWorker(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    await w.stop(0);
    await endSupervisedCommands();
    // The reaper's path, with this worker declared dead: its attempts are re-queued without waiting out the lease.
    // A store with several processes lets one reaper at a time through, so a busy reaper means: try again shortly.
    let held = w.activeCount;
    for (let tries = 0; held > 0 && tries < HAND_BACK_TRIES; tries += 1) {
      if (tries > 0) await new Promise((r) => setTimeout(r, HAND_BACK_RETRY_MS));
      const result = await this.store.reap(this.clock.now(), (owner) => owner === w.owner);
      this.bus.publish(result.events);
      held -= result.expired;
    }
  }

  /**
   * Resolves when the run reaches a terminal state (or, with `untilSettled`, also when it waits for a
   * human or is paused). Events of this process wake it at once; runs worked elsewhere are polled. Rejects with
   * the abort reason when `signal` aborts.
   */
  waitForRun(runId: string, options: { pollMs?: number; untilSettled?: boolean; signal?: AbortSignal } = {}): Promise<RunRecord> {
    const done = (run: RunRecord) => isTerminalRun(run.status) || (options.untilSettled === true && (run.status === 'paused' || run.status === 'waiting'));
    return new Promise((resolve, reject) => {
      let checking = false;
      let again = false;
      const check = async (): Promise<void> => {
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        try {
          const run = await this.requireRun(runId);
          if (done(run)) {
            cleanup();
            resolve(run);
          }
        } catch (err) {
          cleanup();
          reject(err);
        } finally {
          checking = false;
        }
        if (again) {
          again = false;
          await check();
        }
      };
      const unsubscribe = this.subscribe((e: RunEvent) => {
        if (e.runId === runId && e.step === null) void check();
      });
      const timer = setInterval(() => void check(), options.pollMs ?? 200);
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason);
      };
      const cleanup = () => {
        unsubscribe();
        clearInterval(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      void check();
    });
  }

  /** Starts the runs that record saves are waiting to trigger, then stops the worker and closes the store. */
  async close(): Promise<void> {
    for (const stop of this.scheduleStops.splice(0)) await stop();
    await this.attributeTriggers.flush().catch((err) => this.onError(err));
    await this.stopWorker();
    await this.store.close();
  }
}

/**
 * How often {@link Engine.interruptWorker} tries to hand attempts back while another process is reaping, and how
 * long it waits between tries. What is left is taken over after lease expiry, or at once by a `--resume` on this
 * machine.
 */
const HAND_BACK_TRIES = 20;
const HAND_BACK_RETRY_MS = 50;

/** `base` plus one more type, read through (types registered in `base` later are seen). */
function withStepType(base: StepRegistry, extra: StepType<any>): StepRegistry {
  const name = extra.type;
  const snapshot = () => new Map([...base, [name, extra]]);
  return {
    get: (key) => (key === name ? extra : base.get(key)),
    has: (key) => key === name || base.has(key),
    get size() {
      return snapshot().size;
    },
    forEach: (fn, thisArg) => snapshot().forEach(fn, thisArg),
    entries: () => snapshot().entries(),
    keys: () => snapshot().keys(),
    values: () => snapshot().values(),
    [Symbol.iterator]: () => snapshot().entries(),
  };
}

/** `SLUICE_MAX_LOG_BYTES` as bytes, or undefined when unset; a value that is no size is refused by name. */
function logLimitFromEnv(): number | undefined {
  const raw = process.env['SLUICE_MAX_LOG_BYTES'];
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    return parseByteSize(raw);
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `SLUICE_MAX_LOG_BYTES: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Stores keep a run's priority in a 32-bit integer column. */
const PRIORITY_RANGE = [-2_147_483_648, 2_147_483_647] as const;
/** The largest epoch milliseconds a JavaScript `Date` holds (year 275760). */
const MAX_DATE_MS = 8.64e15;

/** Throws INPUT_INVALID naming `priority` or `runAt` when the store could not hold it or it could never come. */
function checkRunTiming(o: StartRunOptions): void {
  const [min, max] = PRIORITY_RANGE;
  if (o.priority !== undefined && !(Number.isInteger(o.priority) && o.priority >= min && o.priority <= max)) {
    throw new SluiceError('INPUT_INVALID', `priority must be an integer from ${min} to ${max}, got ${o.priority}`);
  }
  if (o.runAt !== undefined && !(Number.isFinite(o.runAt) && Math.abs(o.runAt) <= MAX_DATE_MS)) {
    throw new SluiceError('INPUT_INVALID', `runAt must be epoch milliseconds within ±${MAX_DATE_MS} (the range of dates), got ${o.runAt}`);
  }
}
