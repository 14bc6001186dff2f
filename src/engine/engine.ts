import { SluiceError } from '../core/errors.js';
import type { Pipeline } from '../core/model.js';
import { pipelineVersionHash } from '../core/validate.js';
import { DEFAULT_INLINE_LIMIT, type ArtifactStore } from '../artifacts/artifact-store.js';
import { openArtifactStore } from '../artifacts/open-artifact-store.js';
import { CronTriggers } from './cron-triggers.js';
import { PeriodicStatsFold } from './stats-fold.js';
import { parseRetention, PeriodicPrune, pruneRuns, type PruneOptions, type PruneReport } from './retention.js';
import type { StepRegistry, StepType } from '../steps/step-type.js';
import type { CreatedRun, HumanDecision, PipelineSource, RunRecord, Store, StoredPipeline, TransitionResult } from '../store/store.js';
import { EventBus, type BatchListener, type EventListener } from './event-bus.js';
import type { InstalledExtension } from './extension.js';
import { Executor } from './executor.js';
import { newOwnerId } from './owner.js';
import { configureSandboxPool } from '../steps/code/sandbox-pool.js';
import { parseByteSize } from '../steps/code/byte-size.js';
import { endOrphanedCommands } from '../steps/command/command-registry.js';
import { endSupervisedCommands } from '../steps/command/supervised-process.js';
import { handBackAttempts } from './hand-back.js';
import { isTypedPipeline, type PipelineInput, type PipelineOutput, type TypedPipeline } from '../define/pipeline-builder.js';
import { codePipelineSource } from '../define/load-pipelines.js';
import { runTypedPipeline, type RunPipelineOptions } from '../define/run-pipeline.js';
import { logReap, Worker, type WorkerOptions } from './worker.js';
import { logRunEvents, silentLogger, type EngineLogger } from './engine-log.js';
import { RunTracing } from './run-tracing.js';
import { tracerFromEnv, tracingEnabled, type RunTracer } from '../telemetry/tracing.js';
import { checkEventName, pipelinesTriggeredBy } from '../core/event-triggers.js';
import { InputChecks, renderConcurrencyKeysOf, runRequest, type StartRunOptions } from './run-start.js';
import { waitForRun, type WaitOptions } from './wait-for-run.js';
import { createRunsUnderFlow, HeldRunReleaser } from './flow-control.js';
import type { RunPort } from '../store/ports.js';
import { installExpressionPool } from './expression-pool.js';
import { deliverEvent, matchFailed } from './event-waits.js';
import { checkApprovalResponse } from './approval-response.js';
import { decideAtDeadline, startApprovalDeadlines } from './approval-deadlines.js';
import type { DueApproval } from '../core/waits.js';
import type { Clock, EmitOptions, EmittedEvent, EngineOptions } from './engine-options.js';

export type { Clock, EmitOptions, EmittedEvent, EngineOptions } from './engine-options.js';
export type { StartRunOptions } from './run-start.js';

/**
 * The engine: registers pipelines, starts and controls runs, and runs a worker in this process.
 * It is a value: several engines may share one process (tests do).
 */
export class Engine {
  readonly store: Store;
  /** The run paths' view of {@link store}: what registering, starting, controlling and reaping runs needs. */
  private readonly runs: RunPort;
  readonly steps: StepRegistry;
  readonly clock: Clock;
  private readonly bus = new EventBus();
  private readonly executor: Executor;
  private readonly onError: (err: unknown) => void;
  private worker: Worker | null = null;
  private stopDeadlines: (() => void) | null = null; // the approval-deadline checks of the running worker
  /** Stops what {@link startSchedules} started; close() calls each. */
  private readonly scheduleStops: Array<() => Promise<void>> = [];
  /** Content-addressed blobs shared by this engine's steps. */
  readonly artifacts: ArtifactStore;
  /** Checks of run inputs: depth, size and the pipeline's input schema. */
  private readonly inputChecks: InputChecks;
  private readonly maxLogBytesPerAttempt: number | undefined;
  /** The installed extensions by name. */
  private readonly extensions = new Map<string, InstalledExtension>();
  /** Starts runs a singleton queue held once the run they wait for ends. */
  readonly heldRuns: HeldRunReleaser;
  /** Values visible to steps as `secrets.<NAME>` (also to in-memory executions: simulate, ingest, evals). */
  readonly secrets: Readonly<Record<string, string>>;
  /** Where the engine logs. Default: nowhere. */
  readonly logger: EngineLogger;
  /** Spans of runs and attempts, when tracing is on. */
  private readonly tracing: RunTracing | undefined;
  /** Store-wide retention in ms (EngineOptions.retention); undefined: runs of pipelines without `retention` are kept. */
  readonly defaultRetentionMs: number | undefined;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.runs = options.store;
    this.logger = options.logger ?? silentLogger;
    if (options.logger) this.bus.subscribeBatches((events) => logRunEvents(this.logger, events));
    this.secrets = options.secrets ?? {};
    this.clock = options.clock ?? { now: () => Date.now() };
    this.onError = options.onError ?? (options.logger ? (err) => this.logger.error({ err }, 'background work failed') : undefined) ?? ((err) => process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`));
    this.steps = this.installExtensions(options);
    this.artifacts = typeof options.artifacts === 'object' ? options.artifacts : openArtifactStore(options.artifacts ?? options.artifactsDir, { store: this.store });
    this.inputChecks = new InputChecks(options.maxInputBytes ?? 1024 * 1024);
    // Expressions that may run a regex evaluate in worker threads, off the event loop.
    installExpressionPool();
    this.defaultRetentionMs =
      options.retention === undefined ? parseRetention(process.env['SLUICE_RETENTION'], 'SLUICE_RETENTION') : parseRetention(String(options.retention), 'retention');
    if (options.codeWorkers !== undefined) configureSandboxPool(options.codeWorkers);
    configureSandboxPool(options.codeSandbox);
    this.maxLogBytesPerAttempt = options.maxLogBytesPerAttempt ?? logLimitFromEnv();
    this.tracing = this.startTracing(options.tracer);
    this.heldRuns = new HeldRunReleaser(this.store, () => this.clock.now(), () => this.worker?.wake(), (err) => this.onError(err));
    this.bus.subscribeBatches((events) => this.heldRuns.onEvents(events));
    this.executor = new Executor({
      store: this.runs,
      steps: this.steps,
      artifacts: this.artifacts,
      inlineLimit: options.inlineOutputLimit ?? DEFAULT_INLINE_LIMIT,
      secrets: this.secrets,
      now: () => this.clock.now(),
      log: (attempt, stream, line) => this.worker?.log(attempt, stream, line),
      ...(this.tracing ? { tracing: this.tracing } : {}),
      waits: this.store.waits,
      publish: (events) => this.bus.publish(events),
    });
  }

  /** Tracing as `tracer` (or the environment) asks; the SDK is imported only when it is on. */
  private startTracing(tracer: RunTracer | false | undefined): RunTracing | undefined {
    if (tracer === false || (tracer === undefined && !tracingEnabled())) return undefined;
    const loaded = tracer === undefined ? tracerFromEnv() : Promise.resolve(tracer);
    const tracing = new RunTracing(loaded, this.store, (err) => this.onError(err));
    this.bus.subscribeBatches((events) => tracing.runsEnded(events));
    return tracing;
  }

  /**
   * Stores a normalized pipeline; returns the stored version (new only when the definition changed). An
   * attribute pipeline is refused (TARGET_TAKEN, PIPELINE_CYCLE) when another pipeline of its dataset writes
   * its target or when the pipelines would read each other's fields in a cycle.
   */
  async registerPipeline(written: Pipeline | TypedPipeline<any, any, any, any, any>, source?: PipelineSource): Promise<StoredPipeline> {
    // A pipeline defined in code normalizes as YAML does; its stored source is that YAML.
    if (isTypedPipeline(written)) source ??= codePipelineSource(written);
    const pipeline = isTypedPipeline(written) ? written.normalize(this.steps) : written;
    let registered: Promise<StoredPipeline[]> | undefined;
    const list = () => (registered ??= this.store.listPipelines());
    for (const extension of this.extensions.values()) await extension.checkPipeline?.(pipeline, list);
    return this.runs.savePipeline(pipeline, pipelineVersionHash(pipeline), source);
  }

  /**
   * Runs a pipeline defined in code and returns its typed output (the declared `output`, else the final steps'
   * outputs by name, artifacts resolved): registers it (a new version only when it changed), checks `input`,
   * starts the in-process worker if none runs, and waits. `signal` and `timeout` (ms) cancel the run and reject;
   * a failed run rejects with its failed steps' codes and messages.
   */
  run<P extends TypedPipeline<any, any, any, any, any>>(pipeline: P, input: PipelineInput<P>, options: RunPipelineOptions = {}): Promise<PipelineOutput<P>> {
    if (!this.worker) this.startWorker();
    return runTypedPipeline(this, pipeline, input, options);
  }

  async requirePipeline(name: string, version?: number): Promise<StoredPipeline> {
    const p = await this.runs.getPipeline(name, version);
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
    const requests = runs.map((o) => runRequest(stored, o, this.inputChecks));
    if (stored.definition.steps.some((s) => s.concurrencyKey !== null)) await renderConcurrencyKeysOf(stored, requests, () => this.clock.now());
    const created = await createRunsUnderFlow(stored, requests, this.store, (reqs) => this.runs.createRuns(reqs, this.clock.now(), this.worker?.claimRequest()));
    for (const c of created.runs) this.bus.publish(c.events);
    this.worker?.adopt(created.claimed);
    // singleton cancel_running: the new run is stored; now the one it replaces ends.
    for (const c of created.runs) if (c.flow?.cancels) await this.cancel(c.flow.cancels).catch((err: unknown) => this.onError(err));
    return created.runs;
  }

  /** Hands events of woken waits to the bus (one function per engine: event deliveries are batched per it). */
  private readonly publishWaitEvents = (events: Parameters<EventBus['publish']>[0]): void => this.bus.publish(events);

  /**
   * Fires the event `event`: starts one run of every enabled pipeline whose triggers name it, each with `payload`
   * as its input (default null), and wakes the `wait_for_event` steps it matches. With `idempotencyKey`, emitting
   * again with the same key starts nothing new (each run says `created: false`). No pipeline listening is not an
   * error: `runs` is empty.
   */

  async emit(event: string, payload: unknown = null, options: EmitOptions = {}): Promise<EmittedEvent> {
    checkEventName(event);
    const runs: CreatedRun[] = [];
    for (const pipeline of pipelinesTriggeredBy(await this.store.listPipelines(), event)) {
      runs.push(
        await this.startRun(pipeline, {
          input: payload ?? null,
          ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
          ...(options.traceparent === undefined ? {} : { traceparent: options.traceparent }),
        }),
      );
    }
    // The event is also kept for waits (`wait_for_event`) and wakes those it satisfies.
    await deliverEvent(this.store.waits, event, payload ?? null, this.clock.now(), this.publishWaitEvents, (w, err) => this.onError(matchFailed(w, event, err)));
    return { event, runs };
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.runs.getRun(id);
  }

  async requireRun(id: string): Promise<RunRecord> {
    const run = await this.runs.getRun(id);
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
    const result = await this.runs.rollbackRun(runId, step, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  /** A human's decision on a blocked step (an `approval`, or a `gate` that blocked). */
  async decide(runId: string, step: string, decision: HumanDecision): Promise<TransitionResult> {
    if (decision.decision === 'approve') checkApprovalResponse(runId, (await this.store.listSteps(runId)).find((s) => s.name === step), decision);
    const result = await this.runs.decideStep(runId, step, decision, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  private async control(runId: string, action: 'pause' | 'resume' | 'cancel' | 'retry'): Promise<TransitionResult> {
    const result = await this.runs.controlRun(runId, action, this.clock.now());
    this.afterTransition(result);
    return result;
  }

  private afterTransition(result: Pick<TransitionResult, 'events'>): void {
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
    const result = await this.runs.reap(this.clock.now(), isOwnerDead);
    this.bus.publish(result.events);
    logReap(this.logger, 'this host', result);
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
        store: this.runs,
        executor: this.executor,
        owner: newOwnerId(),
        now: () => this.clock.now(),
        publish: (events) => this.bus.publish(events),
        onError: this.onError,
        logger: this.logger,
      },
      { ...(this.maxLogBytesPerAttempt === undefined ? {} : { maxLogBytesPerAttempt: this.maxLogBytesPerAttempt }), ...options },
    );
    this.worker.start();
    // Runs held behind a run that ended while no process could release them (a crash) start now.
    void this.heldRuns.release();
    // Approvals past their deadline are decided by whichever process with a worker checks first, while it has one.
    const deadlines = { waits: this.store.waits, now: () => this.clock.now() };
    this.stopDeadlines = startApprovalDeadlines(this.store.waits, deadlines.now, async (due: DueApproval) => this.afterTransition(await decideAtDeadline(deadlines, due)), this.onError, options.pollMs ?? 250);
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
   * timer (`pruneEveryMs`, default 1 h), folding finished runs into the stats rollup (`statsFoldEveryMs`, default
   * 10 s), each only while {@link isLeading}. Returns a function that stops them.
   */
  startSchedules(options: { cron?: boolean; pruneEveryMs?: number; statsFoldEveryMs?: number; onError?: (err: unknown) => void; onPruned?: (report: PruneReport) => void } = {}): () => Promise<void> {
    const onError = options.onError ?? this.onError;
    const isLeading = () => this.isLeading();
    const cron = options.cron === false ? undefined : new CronTriggers(this, { onError, isLeading });
    const deps = { store: this.store, artifacts: this.artifacts, now: () => this.clock.now(), defaultRetentionMs: this.defaultRetentionMs };
    const prune = new PeriodicPrune(deps, { isLeading, onError, ...(options.pruneEveryMs === undefined ? {} : { everyMs: options.pruneEveryMs }), ...(options.onPruned ? { onPruned: options.onPruned } : {}) });
    void cron?.start();
    prune.start();
    const statsFold = new PeriodicStatsFold(this.store, { now: deps.now, isLeading, onError, ...(options.statsFoldEveryMs === undefined ? {} : { everyMs: options.statsFoldEveryMs }) });
    statsFold.start();
    const stop = async () => {
      const i = this.scheduleStops.indexOf(stop);
      if (i >= 0) this.scheduleStops.splice(i, 1);
      cron?.stop();
      await prune.stop();
      await statsFold.stop();
    };
    this.scheduleStops.push(stop);
    return stop;
  }

  async stopWorker(graceMs?: number): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.stopDeadlines?.();
    this.stopDeadlines = null;
    if (w) await w.stop(graceMs);
  }

  /**
   * Stops the in-process worker (the process was told to stop, by SIGINT or SIGTERM): it claims nothing more, its
   * attempts may finish for up to `graceMs` (default: 0, at once), then the rest are aborted, the processes of
   * their `command` steps are ended (SIGTERM, then SIGKILL after their `kill_grace`) and, once they are gone, the
   * attempts are handed back: claimable at once by any worker, the run goes on where it stopped. Resolves with
   * how many attempts were handed back.
   */
  async interruptWorker(graceMs = 0): Promise<{ handedBack: number }> {
    const w = this.worker;
    this.worker = null;
    this.stopDeadlines?.();
    this.stopDeadlines = null;
    if (!w) return { handedBack: 0 };
    await w.stop(graceMs);
    await endSupervisedCommands();
    const deps = { runs: this.runs, now: () => this.clock.now(), publish: this.publishWaitEvents, logger: this.logger };
    return { handedBack: await handBackAttempts(deps, w.owner, w.activeCount) };
  }

  /**
   * Resolves when the run reaches a terminal state (or, with `untilSettled`, also when it waits for a
   * human or is paused). Events of this process wake it at once; runs worked elsewhere are polled. Rejects with
   * the abort reason when `signal` aborts, and with `WAIT_TIMEOUT` after `timeout` ms (the run goes on either way).
   */
  waitForRun(runId: string, options: WaitOptions = {}): Promise<RunRecord> {
    return waitForRun({ requireRun: (id) => this.requireRun(id), subscribe: (listener) => this.subscribe(listener) }, runId, options);
  }

  /** The extension installed under `name` (what its `install` returned), or undefined. */
  extension<T extends InstalledExtension = InstalledExtension>(name: string): T | undefined {
    return this.extensions.get(name) as T | undefined;
  }

  /** Installs `options.extensions`; returns the step registry with the step types they add. */
  private installExtensions(options: EngineOptions): StepRegistry {
    let steps = options.steps;
    for (const extension of options.extensions ?? []) {
      if (this.extensions.has(extension.name)) throw new SluiceError('VALIDATION_FAILED', `engine extension ${extension.name} is listed twice`);
      const installed = extension.install({
        store: this.store,
        steps: () => this.steps,
        startRun: (pipeline, input) => this.startRun(pipeline, { input }),
        onError: (err) => this.onError(err),
        options: { ...(options.triggerDebounceMs === undefined ? {} : { triggerDebounceMs: options.triggerDebounceMs }) },
      });
      this.extensions.set(extension.name, installed);
      for (const type of installed.stepTypes ?? []) steps = withStepType(steps, type);
    }
    return steps;
  }

  /** Lets extensions finish what is pending (record saves waiting to trigger runs), then stops the worker and closes the store. */
  async close(): Promise<void> {
    for (const stop of this.scheduleStops.splice(0)) await stop();
    for (const extension of this.extensions.values()) await extension.close?.().catch((err) => this.onError(err));
    await this.stopWorker();
    await this.tracing?.shutdown().catch((err) => this.onError(err));
    await this.heldRuns.settled();
    await this.store.close();
  }
}

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
