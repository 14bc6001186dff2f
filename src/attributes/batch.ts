import { SluiceError, toErrorRecord, type ErrorRecord } from '../core/errors.js';
import { evaluateCondition } from '../core/expressions.js';
import { isRecord } from '../core/key-path.js';
import { redactJson } from '../core/redact.js';
import type { AttributeConfig, ExpressionContext, Pipeline, Step } from '../core/model.js';
import { failedForGood, mayRetry, retryDelayAfter } from '../core/step-policy.js';
import { buildGraph } from '../core/graph.js';
import { invokeWithTimeout, OutputChecker } from '../engine/step-invocation.js';
import { runCodeItems, type CodeConfig } from '../steps/code/code-step.js';
import { renderStepConfig } from '../steps/render-config.js';
import { StepDirective, type StepContext, type StepRegistry } from '../steps/step-type.js';

/** One record going through the steps of an attribute pipeline. */
export interface BatchItem {
  id: string;
  /** The source fields: `$json` in `code`, `input` in templates. */
  fields: Record<string, unknown>;
  /** The stored value of the target (`$value`), or null. */
  value: unknown;
}

/** What one record came out as: a value with its provenance, or the error of the step it failed in. */
export type ItemOutcome =
  | { ok: true; value: unknown; confidence: number | null; justification: string | null }
  | { ok: false; step: string; error: ErrorRecord };

/**
 * What running steps needs from around it: the step context of the engine step (or a stand-in outside a run),
 * whose signal, log, secrets, artifacts, usage and rate limits the written steps share.
 */
export interface BatchEnv {
  steps: StepRegistry;
  ctx: StepContext;
  /** Records of a batch in flight at once through a step other than `code`. */
  concurrency: number;
}

const outputChecker = new OutputChecker();

/**
 * Runs the written steps of an attribute pipeline over a batch of records, in dependency order. A `code` step
 * takes the whole batch in one entry into its sandbox (`$json`, `$value` and `steps` per record); any other
 * step runs once per record, `concurrency` at a time, with `input` = the source fields and `record` = `{ id,
 * value }` in its templates. A record that fails a step stops there; the others go on. The output of the
 * last step nothing needs is the record's result: `{ value, confidence?, justification? }`, or a bare value.
 */
export async function runBatch(attr: AttributeConfig, pipeline: Pick<Pipeline, 'name'>, items: BatchItem[], env: BatchEnv): Promise<ItemOutcome[]> {
  const graph = buildGraph({ steps: attr.steps } as Pipeline);
  const byName = new Map(attr.steps.map((s) => [s.name, s]));
  const outputs: Array<Record<string, unknown>> = items.map(() => ({}));
  const failures: Array<{ step: string; error: ErrorRecord } | undefined> = items.map(() => undefined);
  for (const name of graph.order) {
    const step = byName.get(name)!;
    const alive = items.map((_, i) => i).filter((i) => failures[i] === undefined);
    if (alive.length === 0) break;
    const results = step.disabled
      ? alive.map(() => ({ ok: true as const, output: null }))
      : step.uses === 'code'
        ? await runCodeStep(step, alive.map((i) => ({ item: items[i]!, steps: outputs[i]! })), env)
        : await runEach(step, alive.map((i) => ({ item: items[i]!, steps: outputs[i]! })), env, pipeline.name);
    results.forEach((r, k) => {
      const i = alive[k]!;
      if (r.ok) outputs[i]![name] = r.output;
      // Retries are spent by now; the step policy says whether the record goes on. Records are independent, so
      // an abort fails this record only (fail_fast has nothing else to stop).
      else if (failedForGood(step, false).kind === 'continue') outputs[i]![name] = null;
      else failures[i] = { step: name, error: toErrorRecord(r.error) };
    });
  }
  const sink = [...attr.steps].reverse().find((s) => (graph.dependents.get(s.name) ?? []).length === 0)!;
  // Values, justifications and errors are stored and shown to viewers: no secret value may reach them.
  return items.map((_, i): ItemOutcome => {
    const failure = failures[i];
    if (failure) return { ok: false, step: failure.step, error: redactJson(failure.error, env.ctx.secrets) };
    return toOutcome(redactJson(outputs[i]![sink.name], env.ctx.secrets));
  });
}

/** `{ value, confidence?, justification? }` gives all three; anything else is the value itself. */
export function toOutcome(output: unknown): ItemOutcome {
  if (isRecord(output) && 'value' in output) {
    const confidence = typeof output.confidence === 'number' && Number.isFinite(output.confidence) ? output.confidence : null;
    const justification = typeof output.justification === 'string' ? output.justification : null;
    return { ok: true, value: output.value ?? null, confidence, justification };
  }
  return { ok: true, value: output ?? null, confidence: null, justification: null };
}

interface Work {
  item: BatchItem;
  steps: Record<string, unknown>;
}

type StepResult = { ok: true; output: unknown } | { ok: false; error: unknown };

function expressionContext(ctx: StepContext, work: Work): ExpressionContext {
  return { input: work.item.fields, steps: work.steps, run: ctx.run, secrets: ctx.secrets, record: { id: work.item.id, value: work.item.value } };
}

function stepContext(env: BatchEnv, step: Step, input: unknown, steps: Record<string, unknown>, signal: AbortSignal): StepContext {
  const parent = env.ctx;
  const { items: _items, feedback: _feedback, ...shared } = parent;
  return { ...shared, step: step.name, input, steps, signal, log: (stream, line) => parent.log(stream, `${step.name}: ${line}`) };
}

/** One sandbox entry for the whole batch; records whose `if` is false get null without running. */
async function runCodeStep(step: Step, work: Work[], env: BatchEnv): Promise<StepResult[]> {
  const results: StepResult[] = work.map(() => ({ ok: true, output: null }));
  const run: number[] = [];
  for (let k = 0; k < work.length; k++) {
    try {
      if (step.if === null || (await evaluateCondition(step.if, expressionContext(env.ctx, work[k]!)))) run.push(k);
    } catch (err) {
      results[k] = { ok: false, error: err };
    }
  }
  if (run.length === 0) return results;
  // Rendered once for the batch (no record's fields), the way the step type asks.
  const config = (await renderStepConfig(env.steps.get(step.uses), step.with, { input: null, steps: {}, run: env.ctx.run, secrets: env.ctx.secrets })) as unknown as CodeConfig;
  // Per-item `steps` and `$value` cross into the sandbox only when some item has them.
  const values = run.map((k) => work[k]!.item.value);
  const steps = run.map((k) => work[k]!.steps);
  const batch = {
    items: run.map((k) => work[k]!.item.fields),
    ...(values.some((v) => v !== null) ? { values } : {}),
    ...(steps.some((s) => Object.keys(s).length > 0) ? { steps } : {}),
  };
  const out = await withRetries(step, env.ctx.signal, () =>
    invokeWithTimeout(step, env.ctx.signal, (signal) => runCodeItems(stepContext(env, step, null, {}, signal), config, batch)),
  );
  run.forEach((k, j) => {
    const r = out[j]!;
    if (!r.ok) results[k] = { ok: false, error: r.error };
    else results[k] = checked(step, r.output);
  });
  return results;
}

/** Each record on its own, `concurrency` at a time. */
async function runEach(step: Step, work: Work[], env: BatchEnv, pipeline: string): Promise<StepResult[]> {
  const type = env.steps.get(step.uses);
  if (!type) throw new SluiceError('UNKNOWN_STEP_TYPE', `no step type ${step.uses} is registered (pipeline ${pipeline})`, { retryable: false });
  const results: StepResult[] = new Array<StepResult>(work.length);
  const signals = new SignalFanOut(env.ctx.signal);
  let next = 0;
  const lane = async () => {
    while (next < work.length) {
      const k = next++;
      const record = signals.child();
      try {
        results[k] = await runOne(step, work[k]!, env, type, record.signal);
      } finally {
        record.done();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(env.concurrency, work.length) }, lane));
  } finally {
    signals.close();
  }
  return results;
}

/**
 * Abort signals of the records in flight, each following the run's signal through one listener on it. Every
 * invocation listens to the signal it is given (timeouts, the HTTP client, the rate limiter): given the run's
 * signal itself, `concurrency` records at once would pile that many listeners onto it (Node warns past 10,
 * MaxListenersExceededWarning); given its own, each record's listeners stay on its own signal.
 */
export class SignalFanOut {
  private readonly live = new Set<AbortController>();
  private readonly onAbort = () => {
    for (const c of this.live) c.abort(this.parent.reason);
  };

  constructor(private readonly parent: AbortSignal) {
    parent.addEventListener('abort', this.onAbort, { once: true });
  }

  /** A signal that aborts with the parent; call `done` when the record is finished with it. */
  child(): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    if (this.parent.aborted) controller.abort(this.parent.reason);
    else this.live.add(controller);
    return { signal: controller.signal, done: () => this.live.delete(controller) };
  }

  /** Removes the one listener from the parent. */
  close(): void {
    this.parent.removeEventListener('abort', this.onAbort);
    this.live.clear();
  }
}

async function runOne(step: Step, work: Work, env: BatchEnv, type: NonNullable<ReturnType<StepRegistry['get']>>, signal: AbortSignal): Promise<StepResult> {
  try {
    const expr = expressionContext(env.ctx, work);
    if (step.if !== null && !(await evaluateCondition(step.if, expr))) return { ok: true, output: null };
    const config = await renderStepConfig(type, step.with, expr);
    const output = await withRetries(step, signal, () =>
      invokeWithTimeout(step, signal, (stepSignal) => type.execute(stepContext(env, step, work.item.fields, work.steps, stepSignal), config)),
    );
    if (output instanceof StepDirective) {
      if (output.kind === 'decided') return checked(step, output.detail);
      const what = output.kind === 'block' ? 'asked for a human decision' : 'asked to run an earlier step again';
      return { ok: false, error: new SluiceError('STEP_FAILED', `step ${step.name} ${what}, which a record of an attribute pipeline cannot wait for`, { retryable: false }) };
    }
    return checked(step, output ?? null);
  } catch (err) {
    return { ok: false, error: err };
  }
}

function checked(step: Step, output: unknown): StepResult {
  try {
    outputChecker.check(step, output);
    return { ok: true, output };
  } catch (err) {
    return { ok: false, error: err };
  }
}

/** The step's retry policy (the step policy's), with its delays; a cancelled run stops waiting at once. */
async function withRetries<T>(step: Step, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  for (let failures = 0; ; ) {
    try {
      return await work();
    } catch (err) {
      failures += 1;
      if (!mayRetry(step.retry, failures, toErrorRecord(err).retryable, !signal.aborted)) throw err;
      await sleep(retryDelayAfter(step.retry, failures), signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
