import { dirname } from 'node:path';
import { SluiceError, toErrorRecord, type ErrorRecord } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { simulatePipeline } from '../engine/simulate.js';
import type { StepContext } from '../steps/step-type.js';
import type { StoredPipeline } from '../store/store.js';
import { derivedFields, sourceFields } from './attribute-step.js';
import { runBatch, toOutcome, type BatchItem, type ItemOutcome } from './batch.js';

/** One case to compute: a stored record, or source fields given inline. */
export interface ComputeCase {
  recordId?: string;
  input?: Record<string, unknown>;
}

export interface ComputedValue {
  value: unknown;
  confidence: number | null;
  justification: string | null;
  /** Why the pipeline gave no value for this case. */
  error: ErrorRecord | null;
  tokensIn: number;
  tokensOut: number;
}

/**
 * Runs a pipeline on each case in memory; nothing is stored (no run, no value). Attribute pipelines read a
 * record's source fields as a run would (or take `input` as the source fields) and run their steps in
 * batches; other pipelines are simulated with `input` (they have no dataset, so a record case fails with
 * INPUT_INVALID) and give the output of their last step. An output object with a `value` key gives value,
 * confidence and justification; any other output is the value.
 */
export async function computeValues(engine: Engine, pipeline: StoredPipeline, cases: ComputeCase[], options: { signal?: AbortSignal } = {}): Promise<ComputedValue[]> {
  const signal = options.signal ?? new AbortController().signal;
  return pipeline.definition.attribute ? computeAttribute(engine, pipeline, cases, signal) : computeSimulated(engine, pipeline, cases);
}

async function computeAttribute(engine: Engine, stored: StoredPipeline, cases: ComputeCase[], signal: AbortSignal): Promise<ComputedValue[]> {
  const attr = stored.definition.attribute!;
  const derived = await derivedFields(engine.store, attr, stored.name);
  const out: ComputedValue[] = new Array<ComputedValue>(cases.length);
  const items: Array<BatchItem & { index: number }> = [];
  for (const [index, c] of cases.entries()) {
    if (c.input !== undefined) {
      items.push({ index, id: c.recordId ?? `case-${index + 1}`, fields: c.input, value: null });
      continue;
    }
    const [work] = c.recordId === undefined ? [] : await engine.store.loadAttributeWork(attr.dataset, attr.target, derived, { ids: [c.recordId] });
    if (!work) {
      out[index] = failed(new SluiceError('RECORD_NOT_FOUND', `dataset ${attr.dataset} has no record "${c.recordId ?? ''}"`));
      continue;
    }
    items.push({ index, id: work.id, fields: sourceFields(attr, work, new Set(derived)), value: work.current?.value ?? null });
  }
  const usage = { tokensIn: 0, tokensOut: 0 };
  const ctx = standInContext(engine, stored, signal, usage);
  for (let i = 0; i < items.length; i += attr.batchSize) {
    const batch = items.slice(i, i + attr.batchSize);
    const before = { ...usage };
    const outcomes = await runBatch(attr, stored.definition, batch, { steps: engine.steps, ctx, concurrency: attr.concurrency });
    // Usage is counted per batch; each case of the batch gets its share.
    const share = (n: number) => Math.round(n / batch.length);
    outcomes.forEach((o, k) => {
      out[batch[k]!.index] = toComputed(o, share(usage.tokensIn - before.tokensIn), share(usage.tokensOut - before.tokensOut));
    });
  }
  return out;
}

async function computeSimulated(engine: Engine, stored: StoredPipeline, cases: ComputeCase[]): Promise<ComputedValue[]> {
  const inputs = cases.map((c) => c.input ?? null);
  const runs = await simulatePipeline(stored.definition, inputs, {
    steps: engine.steps,
    secrets: { ...engine.secrets },
    baseDir: baseDirOf(stored),
    version: stored.version,
    artifacts: engine.artifacts,
  });
  return runs.map((run, i) => {
    if (cases[i]!.input === undefined) return failed(new SluiceError('INPUT_INVALID', `pipeline ${stored.name} is not an attribute pipeline: its eval cases need an input, not a record`));
    const tokens = Object.values(run.steps).reduce((t, s) => ({ in: t.in + (s.usage?.tokensIn ?? 0), out: t.out + (s.usage?.tokensOut ?? 0) }), { in: 0, out: 0 });
    const failedStep = Object.entries(run.steps).find(([, s]) => s.status === 'failed' || s.status === 'blocked');
    if (run.status !== 'succeeded' || failedStep) {
      const [step, result] = failedStep ?? ['?', undefined];
      const error = result?.error ?? { code: 'STEP_FAILED', message: result?.status === 'blocked' ? 'the step waits for a human decision' : 'the pipeline did not finish' };
      return { ...failed(new SluiceError('STEP_FAILED', `step ${step}: ${error.message}`)), tokensIn: tokens.in, tokensOut: tokens.out };
    }
    const sinks = Object.keys(run.output);
    const last = stored.definition.steps.filter((s) => sinks.includes(s.name)).at(-1)?.name;
    return toComputed(toOutcome(last === undefined ? null : run.output[last]), tokens.in, tokens.out);
  });
}

function toComputed(o: ItemOutcome, tokensIn: number, tokensOut: number): ComputedValue {
  if (o.ok) return { value: o.value, confidence: o.confidence, justification: o.justification, error: null, tokensIn, tokensOut };
  return { value: null, confidence: null, justification: null, error: { ...o.error, message: `step ${o.step}: ${o.error.message}` }, tokensIn, tokensOut };
}

function failed(err: unknown): ComputedValue {
  const { stack: _stack, ...error } = toErrorRecord(err);
  return { value: null, confidence: null, justification: null, error, tokensIn: 0, tokensOut: 0 };
}

function baseDirOf(stored: StoredPipeline): string {
  return stored.sourceFile ? dirname(stored.sourceFile) : process.cwd();
}

/** What the steps of an in-memory computation see instead of a run's step context. */
function standInContext(engine: Engine, stored: StoredPipeline, signal: AbortSignal, usage: { tokensIn: number; tokensOut: number }): StepContext {
  return {
    run: { id: 'eval', attempt: 1, pipeline: stored.name, version: stored.version },
    step: 'attribute',
    input: null,
    steps: {},
    signal,
    log: () => undefined,
    secrets: { ...engine.secrets },
    baseDir: baseDirOf(stored),
    now: () => engine.clock.now(),
    reportUsage: (u) => {
      usage.tokensIn += u.tokensIn ?? 0;
      usage.tokensOut += u.tokensOut ?? 0;
    },
    artifacts: engine.artifacts,
  };
}
