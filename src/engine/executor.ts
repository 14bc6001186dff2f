import { isArtifactRef, type ArtifactStore } from '../artifacts/artifact-store.js';
import { abortError, abortReasonError, invokeWithTimeout, OutputChecker } from './step-invocation.js';
import type { AttemptCancel } from './attempt-cancel.js';
import { isSluiceError, SluiceError, toErrorRecord } from '../core/errors.js';
import { evaluateCondition, parseTemplate, referencedSteps, renderTemplate, visitStrings } from '../core/expressions.js';
import { isRecord } from '../core/key-path.js';
import { redactDeep, redactJson, redactSecrets } from '../core/redact.js';
import { cacheKeyOfParts, explainMiss, hashValue, type CacheExplain, type CacheParts, type FileHashes } from '../core/cache-key.js';
import { compileGlob, matchesAny } from '../core/glob.js';
import { checkOutputs, hashFiles, relativeTo } from './cache-files.js';
import type { ExpressionContext, Pipeline, Step } from '../core/model.js';
import { namingStep } from './expression-pool.js';
import { retryDelayAfter } from '../core/step-policy.js';
import { ATTRIBUTE_STEP_TYPE } from '../core/validate.js';
import { renderStepConfig } from '../steps/render-config.js';
import { StepDirective, type LogStream, type SharedRateLimit, type StepContext, type StepRegistry, type StepUsage } from '../steps/step-type.js';
import type { AttemptResult, CacheHit, ClaimedAttempt, GateDecision, RunEvent, StoredPipeline } from '../store/store.js';
import type { RunPort } from '../store/ports.js';
import type { RunTracing } from './run-tracing.js';
import type { WaitPort } from '../store/waits-port.js';
import { waitAccess } from './wait-access.js';

/** What executing one attempt needs from its surroundings. */
export interface ExecutorDeps {
  store: RunPort;
  steps: StepRegistry;
  artifacts: ArtifactStore;
  /** Outputs whose JSON is larger are stored as artifacts. */
  inlineLimit: number;
  secrets: Record<string, string>;
  now(): number;
  log(attempt: ClaimedAttempt, stream: LogStream, line: string): void;
  random?: () => number;
  /** Spans of attempts, when tracing is on. */
  tracing?: RunTracing;
  /** Durable waits, for step types that wait (`sleep`, `wait_for_event`); absent: such steps cannot wait. */
  waits?: WaitPort;
  /** Hands events written outside a completion (a wait woken or timed out) to the event bus. */
  publish?: (events: RunEvent[]) => void;
}

/** Compiled pieces of a pipeline version, cached for the life of the executor. */
interface PreparedPipeline {
  stored: StoredPipeline;
  byName: Map<string, Step>;
  baseDir: string;
  /** Upstream outputs each step reads: its needs plus `steps.X` named in its expressions. */
  reads: Map<string, string[]>;
  /** Steps whose `with` holds no template: their config is a copy of it, with nothing to evaluate. */
  literal: Set<string>;
}

/**
 * Executes claimed attempts: evaluates `if`, resolves `with`, looks up the cache, runs the step type
 * under a timeout and an abort signal, and turns the outcome into an {@link AttemptResult}.
 */
export class Executor {
  private readonly pipelines = new Map<string, Promise<PreparedPipeline>>();
  /** The pipelines of {@link pipelines} once loaded, read without awaiting. */
  private readonly loaded = new Map<string, PreparedPipeline>();
  private readonly outputs = new OutputChecker();
  /**
   * The `traceparent` of each attempt running under a span, which its step passes on. Keyed by the claimed attempt
   * itself: two leases of one step share its id.
   */
  private readonly traceparents = new Map<ClaimedAttempt, string>();

  constructor(private readonly deps: ExecutorDeps) {}

  /**
   * Executes `attempt` for the worker `owner` that holds its lease (fenced writes during execution carry it);
   * `cancel` aborts it.
   */
  async execute(attempt: ClaimedAttempt, owner: string, cancel: AttemptCancel): Promise<AttemptResult> {
    if (!this.deps.tracing) return this.executeUntraced(attempt, owner, cancel);
    const startMs = this.deps.now();
    const uses = (await this.prepare(attempt).catch(() => undefined))?.byName.get(attempt.step)?.uses ?? 'unknown';
    const traced = { runId: attempt.runId, pipeline: attempt.pipeline, version: attempt.version, step: attempt.step, uses, attempt: attempt.number };
    const span = await this.deps.tracing.startAttempt(traced, startMs);
    if (span) this.traceparents.set(attempt, span.traceparent);
    try {
      const result = await this.executeUntraced(attempt, owner, cancel);
      span?.end({ outcome: result.outcome, error: result.error, usage: result.usage, endMs: this.deps.now() });
      return result;
    } finally {
      this.traceparents.delete(attempt);
    }
  }

  private async executeUntraced(attempt: ClaimedAttempt, owner: string, cancel: AttemptCancel): Promise<AttemptResult> {
    const started = this.deps.now();
    const usage: StepUsage[] = [];
    const base = { attemptId: attempt.id, fence: attempt.fence, owner };
    try {
      const outcome = await this.run(attempt, owner, cancel, usage);
      return { ...base, ...outcome, ...usageOf(usage), processingMs: this.deps.now() - started };
    } catch (err) {
      const thrown = cancel.aborted && isSluiceError(cancel.reason) ? cancel.reason : err;
      const error = redactDeep(toErrorRecord(thrown), this.deps.secrets);
      const prepared = await this.prepare(attempt).catch(() => undefined);
      const step = prepared?.byName.get(attempt.step);
      // A server that said when to come back (Retry-After) is not retried sooner.
      const delay = step ? retryDelayAfter(step.retry, attempt.number, retryAfterOf(thrown), this.deps.random) : retryAfterOf(thrown);
      return { ...base, outcome: 'failed', error, retryable: error.retryable !== false, retryDelayMs: delay, ...usageOf(usage), processingMs: this.deps.now() - started };
    }
  }

  private async run(attempt: ClaimedAttempt, owner: string, cancel: AttemptCancel, usage: StepUsage[]): Promise<Omit<AttemptResult, 'attemptId' | 'fence' | 'owner' | 'processingMs'>> {
    const prepared = this.loaded.get(`${attempt.pipeline}@${attempt.version}`) ?? (await this.prepare(attempt));
    const step = prepared.byName.get(attempt.step);
    if (!step) throw new SluiceError('STEP_NOT_FOUND', `pipeline ${attempt.pipeline} v${attempt.version} has no step ${attempt.step}`);
    const reads = prepared.reads.get(step.name) ?? [];
    const outputs = reads.length > 0 ? await this.upstreamOutputs(attempt, reads) : {};
    // Run state holds references to large outputs; the step and its expressions see the values.
    const steps: Record<string, unknown> = {};
    for (const name of reads) steps[name] = await this.dereference(outputs[name] ?? null);
    const ctx: ExpressionContext = {
      input: attempt.input,
      steps,
      run: { id: attempt.runId, attempt: attempt.number, pipeline: attempt.pipeline, version: attempt.version },
      secrets: this.deps.secrets,
      ...(attempt.feedback === undefined ? {} : { feedback: attempt.feedback }),
    };
    if (step.if !== null && !(await namingStep(step.name, 'if', evaluateCondition(step.if, ctx)))) return { outcome: 'skipped', output: null };
    const config = prepared.literal.has(step.name) ? (copyLiteral(step.with) as Record<string, unknown>) : await namingStep(step.name, 'with', this.resolveConfig(step, ctx));
    // A step that waits is never taken from the cache: a cached result would skip the wait.
    if (!step.cache || this.deps.steps.get(step.uses)?.waits === true) {
      const output = await this.invoke(step, config, ctx, prepared.baseDir, attempt, owner, cancel, usage);
      if (output instanceof StepDirective) return directiveResult(this.redact(output));
      this.outputs.check(step, output);
      return { outcome: 'succeeded', output: await this.offload(this.redact(output)) };
    }
    return this.runCached(step, config, ctx, outputs, prepared.baseDir, attempt, owner, cancel, usage);
  }

  /** The outputs of the steps `reads` names: those the claim brought along, and the others read from the store. */
  private async upstreamOutputs(attempt: ClaimedAttempt, reads: string[]): Promise<Record<string, unknown>> {
    const known = attempt.upstream;
    const missing = known ? reads.filter((name) => known[name] === undefined) : reads;
    const outputs = missing.length > 0 ? await this.deps.store.getStepOutputs(attempt.runId, missing) : {};
    for (const name of reads) {
      const text = known?.[name];
      if (text !== undefined) outputs[name] = JSON.parse(text);
    }
    return outputs;
  }

  /** A step whose cache is on: reuses a stored result with the same key, or runs and says why. */
  private async runCached(
    step: Step,
    config: Record<string, unknown>,
    ctx: ExpressionContext,
    outputs: Record<string, unknown>,
    baseDir: string,
    attempt: ClaimedAttempt,
    owner: string,
    cancel: AttemptCancel,
    usage: StepUsage[],
  ): Promise<Omit<AttemptResult, 'attemptId' | 'fence' | 'owner' | 'processingMs'>> {
    const cacheParts = await this.cacheParts(step, config, ctx, outputs, baseDir, attempt);
    const cacheKey = cacheKeyOfParts(cacheParts);
    let cacheExplain: CacheExplain = { decision: 'ran', reason: 'forced' };
    if (!attempt.force) {
      const hit = await this.deps.store.lookupCache(attempt.pipeline, cacheKey);
      const stale = hit ? await staleOutputs(step, hit, baseDir) : undefined;
      if (hit && !stale) return { outcome: 'cached', output: hit.output, cacheKey, cacheExplain: { decision: 'cached', reason: 'unchanged', run_id: hit.runId } };
      cacheExplain = stale ?? explainMiss(cacheParts, await this.deps.store.latestCacheEntry(attempt.pipeline, step.name));
    }
    const output = await this.invoke(step, config, ctx, baseDir, attempt, owner, cancel, usage);
    if (output instanceof StepDirective) return directiveResult(this.redact(output));
    this.outputs.check(step, output);
    const declared = step.cacheFiles?.outputs ?? [];
    const cacheOutputs = declared.length > 0 ? await this.hashOutputs(declared, baseDir, attempt) : undefined;
    return { outcome: 'succeeded', output: await this.offload(this.redact(output)), cacheKey, cacheable: true, cacheParts, cacheExplain, ...(cacheOutputs ? { cacheOutputs } : {}) };
  }

  /**
   * The parts of a step's cache key: its settings, what it reads, and what its step type and `cache`
   * declaration say it depends on (code, files, the value of `cache.key`). Only steps that declare files, or
   * whose type names some, touch the disk.
   */
  private async cacheParts(step: Step, config: Record<string, unknown>, ctx: ExpressionContext, outputs: Record<string, unknown>, baseDir: string, attempt: ClaimedAttempt): Promise<CacheParts> {
    const parts: CacheParts = { step: step.name, type: step.uses, with: hashValue(config), upstream: hashValue(outputs), input: hashValue(attempt.input), version: attempt.version };
    const declared = step.cacheFiles;
    const type = this.deps.steps.get(step.uses);
    const own = type?.cacheInputs ? await type.cacheInputs(config, { baseDir, declaredInputs: (declared?.inputs.length ?? 0) > 0 }) : {};
    if (own.code !== undefined) parts.code = own.code;
    const ownFiles = withoutOutputs(own.files ?? [], declared?.outputs ?? [], baseDir);
    if ((declared?.inputs.length ?? 0) > 0 || ownFiles.length > 0) {
      const files = await hashFiles(baseDir, declared?.inputs ?? [], ownFiles);
      if (Object.keys(files).length > 0) parts.files = files;
    }
    if (declared?.key != null) parts.key = hashValue(await renderTemplate(declared.key, ctx));
    return parts;
  }

  /** Content hashes of the files the declared outputs match now; a declaration matching nothing is logged. */
  private async hashOutputs(patterns: string[], baseDir: string, attempt: ClaimedAttempt): Promise<FileHashes> {
    const hashes = await hashFiles(baseDir, patterns);
    if (Object.keys(hashes).length === 0) this.deps.log(attempt, 'warn', `cache outputs ${patterns.join(', ')} matched no file: the cached result will not check them`);
    return hashes;
  }

  private async invoke(
    step: Step,
    config: Record<string, unknown>,
    ctx: ExpressionContext,
    baseDir: string,
    attempt: ClaimedAttempt,
    owner: string,
    cancel: AttemptCancel,
    usage: StepUsage[],
  ): Promise<unknown> {
    const type = this.deps.steps.get(step.uses);
    if (!type) throw new SluiceError('UNKNOWN_STEP_TYPE', unknownTypeMessage(step.uses), { retryable: false });
    // The attempt may have been cancelled while its context was loading.
    if (cancel.aborted) throw abortReasonError(cancel.reason);
    const waits = type.waits === true && this.deps.waits ? await waitAccess(this.deps.waits, attempt, step.name, this.deps.now, this.deps.publish) : undefined;
    const context = (signal: () => AbortSignal): StepContext => ({
      run: ctx.run,
      step: step.name,
      input: ctx.input,
      steps: ctx.steps,
      // Made on first use: most steps never look at it.
      get signal() {
        return signal();
      },
      log: (stream, line) => this.deps.log(attempt, stream, redactSecrets(line, this.deps.secrets)),
      secrets: this.deps.secrets,
      baseDir,
      now: this.deps.now,
      reportUsage: (u) => usage.push(u),
      artifacts: this.deps.artifacts,
      items: {
        load: () => this.deps.store.loadStepItems(attempt.runId, step.name),
        save: (items) => this.deps.store.saveStepItems({ attemptId: attempt.id, fence: attempt.fence, owner }, attempt.runId, step.name, items, this.deps.now()),
      },
      rateLimit: this.rateLimit,
      force: attempt.force,
      lease: {
        attemptId: attempt.id,
        fence: attempt.fence,
        owner,
        // The worker cancels an attempt whose lease it lost (or that was cancelled): from then on it writes nothing.
        check: () => {
          if (cancel.aborted) throw abortReasonError(cancel.reason);
        },
      },
      ...(ctx.feedback === undefined ? {} : { feedback: ctx.feedback }),
      ...(waits === undefined ? {} : { waits }),
      ...(this.traceparents.has(attempt) ? { traceparent: this.traceparents.get(attempt)! } : {}),
    });
    const result =
      step.timeoutMs === null
        ? await untilCancelled(type.execute(context(() => cancel.signal), config), cancel)
        : await invokeWithTimeout(step, cancel.signal, (stepSignal) => type.execute(context(() => stepSignal), config));
    return result === undefined ? null : result;
  }

  /** Rate limits kept in the store, so every worker of every process draws on one budget. */
  private readonly rateLimit: SharedRateLimit = {
    acquire: async (key, limits, tokens, signal, onWait) => {
      for (;;) {
        const at = this.deps.now();
        const wait = await this.deps.store.takeRate(key, limits, tokens, at);
        if (wait === 0) return { settle: (actual: number) => void this.deps.store.settleRate(key, at, actual - tokens).catch(() => undefined) };
        onWait?.(wait);
        await sleepUnlessAborted(wait, signal);
      }
    },
  };

  /** `with` with its templates resolved, except the keys the step type renders itself. */
  private async resolveConfig(step: Step, ctx: ExpressionContext): Promise<Record<string, unknown>> {
    return renderStepConfig(this.deps.steps.get(step.uses), step.with, ctx);
  }

  /**
   * `value` with every secret value blanked out: outputs and directives are stored, sent to the live stream and
   * read by viewers, so a step that echoes a secret must not put it there.
   */
  private redact<T>(value: T): T {
    if (value instanceof StepDirective) {
      const detail = redactJson(value.detail, this.deps.secrets);
      return (detail === value.detail ? value : value.withDetail(detail)) as T;
    }
    return redactJson(value, this.deps.secrets);
  }

  /** An output too large to keep inline is stored as an artifact; run state keeps the reference. */
  private async offload(output: unknown): Promise<unknown> {
    const text = JSON.stringify(output ?? null);
    if (text.length <= this.deps.inlineLimit) return output;
    return this.deps.artifacts.put(text, 'application/json');
  }

  private async dereference(value: unknown): Promise<unknown> {
    return isArtifactRef(value) && value.content_type === 'application/json' ? this.deps.artifacts.getJson(value) : value;
  }



  private prepare(attempt: ClaimedAttempt): Promise<PreparedPipeline> {
    const key = `${attempt.pipeline}@${attempt.version}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.load(attempt.pipeline, attempt.version);
      p.then(
        (prepared) => this.loaded.set(key, prepared),
        () => this.pipelines.delete(key),
      );
      this.pipelines.set(key, p);
    }
    return p;
  }

  private async load(name: string, version: number): Promise<PreparedPipeline> {
    const stored = await this.deps.store.getPipeline(name, version);
    if (!stored) throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${name} version ${version} is not stored`, { retryable: false });
    return prepareDefinition(stored);
  }
}

function prepareDefinition(stored: StoredPipeline): PreparedPipeline {
  const def: Pipeline = stored.definition;
  const byName = new Map(def.steps.map((s) => [s.name, s]));
  const reads = new Map(def.steps.map((s) => [s.name, [...new Set([...s.needs, ...referencedSteps(s), ...cacheKeyReads(s)])].filter((n) => byName.has(n))]));
  const baseDir = stored.sourceFile ? dirnameOf(stored.sourceFile) : process.cwd();
  const literal = new Set(def.steps.filter((s) => isLiteral(s.with)).map((s) => s.name));
  return { stored, byName, reads, baseDir, literal };
}

/** Steps named by a `cache.key` expression: their outputs must be loaded to render it. */
function cacheKeyReads(step: Step): string[] {
  const key = step.cacheFiles?.key;
  return key == null ? [] : referencedSteps({ if: null, with: { key } });
}

/** Whether no string in `value` is a template (or a malformed one, whose error rendering reports). */
function isLiteral(value: unknown): boolean {
  let literal = true;
  visitStrings(value, (text) => {
    const parsed = parseTemplate(text);
    if (parsed.error !== undefined || parsed.parts.some((part) => 'expr' in part)) literal = false;
  });
  return literal;
}

/** A copy of a `with` that holds no template, as rendering it would return. */
function copyLiteral(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => copyLiteral(item) ?? null);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyLiteral(value[key]);
    if (item !== undefined) out[key] = item;
  }
  return out;
}

function dirnameOf(file: string): string {
  const i = file.lastIndexOf('/');
  return i <= 0 ? '/' : file.slice(0, i);
}

/** Why a cached result may not be reused: a declared output recorded with it is gone or (if asked) changed. */
async function staleOutputs(step: Step, hit: CacheHit, baseDir: string): Promise<CacheExplain | undefined> {
  const declared = step.cacheFiles;
  if (!declared || declared.outputs.length === 0 || !hit.outputs) return undefined;
  const check = await checkOutputs(baseDir, hit.outputs, declared.outputsUnchanged);
  if (check.missing.length > 0) return { decision: 'ran', reason: 'output_missing', outputs: check.missing, run_id: hit.runId };
  if (check.changed.length > 0) return { decision: 'ran', reason: 'output_changed', outputs: check.changed, run_id: hit.runId };
  return undefined;
}

/** A step's own files, less those its `cache.outputs` declare (a command naming the file it writes). */
function withoutOutputs(files: string[], outputs: string[], baseDir: string): string[] {
  if (files.length === 0 || outputs.length === 0) return files;
  const globs = outputs.flatMap((p) => compileGlob(p));
  return files.filter((f) => !matchesAny(globs, relativeTo(baseDir, f)));
}

/** Why a step type is missing; attribute pipelines say how to install them (an engine built without them). */
function unknownTypeMessage(uses: string): string {
  if (uses === ATTRIBUTE_STEP_TYPE) return 'attribute pipelines are not installed in this engine: create it with createEngine, or pass extensions: [attributePipelines()]';
  return `no step type ${uses} is registered`;
}

/** Sums the usage a step reported; the model is the last one named. */
function usageOf(reports: StepUsage[]): { usage?: StepUsage } {
  if (reports.length === 0) return {};
  const sum: StepUsage = {};
  for (const r of reports) {
    if (r.model !== undefined) sum.model = r.model;
    if (r.tokensIn !== undefined) sum.tokensIn = (sum.tokensIn ?? 0) + r.tokensIn;
    if (r.tokensOut !== undefined) sum.tokensOut = (sum.tokensOut ?? 0) + r.tokensOut;
    if (r.cost !== undefined) sum.cost = (sum.cost ?? 0) + r.cost;
  }
  return { usage: sum };
}

/** `details.retryAfterMs` of a thrown SluiceError (set by steps that read a Retry-After header), else 0. */
function retryAfterOf(err: unknown): number {
  const details = isSluiceError(err) ? (err.details as { retryAfterMs?: unknown } | undefined) : undefined;
  return typeof details?.retryAfterMs === 'number' && details.retryAfterMs > 0 ? details.retryAfterMs : 0;
}

/** A gate or approval that steers the run instead of producing an output. */
function directiveResult(d: StepDirective): Omit<AttemptResult, 'attemptId' | 'fence' | 'owner' | 'processingMs'> {
  const decision = d.detail['decision'] as GateDecision | undefined;
  const gate = isGateDecision(decision) ? { decision } : {};
  if (d.kind === 'spawn') return { outcome: 'spawned', output: null, spawn: d.spawn! };
  if (d.kind === 'decided') return { outcome: 'succeeded', output: d.detail, ...gate };
  if (d.kind === 'block') return { outcome: 'blocked', output: d.detail, ...gate, ...(d.wait ? { wait: d.wait } : {}) };
  if (d.kind === 'wait') return { outcome: 'waiting', output: d.detail, wait: d.wait! };
  return { outcome: 'rewound', output: d.detail, rewind: d.rewind!, ...gate, ...(d.wait ? { wait: d.wait } : {}) };
}

function isGateDecision(v: unknown): v is GateDecision {
  return typeof v === 'object' && v !== null && typeof (v as { decision?: unknown }).decision === 'string';
}

/** Rejects as soon as the attempt is cancelled, even if the step ignores its signal. */
function untilCancelled<T>(work: Promise<T>, cancel: AttemptCancel): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    cancel.onAbort((reason) => reject(abortReasonError(reason)));
    work.then(resolve, reject);
  });
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
