import { SluiceError, toErrorRecord } from '../../core/errors.js';
import type { ExpressionContext } from '../../core/model.js';
import { crashPoint } from '../crash-points.js';
import { renderStepConfig } from '../render-config.js';
import { StepDirective, type StepContext, type StepItem, type StepRegistry, type StepType } from '../step-type.js';

export interface MapConfig {
  /** The list to fan out over (usually a `${{ }}` expression). */
  items: unknown[];
  /** The step run for each item; its `with` may use `item` and `index` in `${{ }}`. */
  step: { uses: string; with?: Record<string, unknown> };
  /** Items checkpointed together. Default: 10. */
  batch_size?: number;
  /** Items of one batch in flight at once. Default: 4. */
  concurrency?: number;
  /** abort (default): a failed item fails the step once its batch is recorded; continue: it is reported. */
  on_item_failure?: 'abort' | 'continue';
}

export interface MapOutput {
  /** Per item, in order: its output, or null when it failed. */
  items: unknown[];
  failed: Array<{ index: number; error: { code: string; message: string } }>;
  succeeded: number;
}

/**
 * `map`: fans out over a list in batches. Each batch's item results are checkpointed before the next
 * batch starts, so a resumed or retried step redoes only the items that failed or were never recorded;
 * no item is dropped. `getSteps` returns the registry the items' step type is looked up in.
 */
export function createMapStep(getSteps: () => StepRegistry): StepType<MapConfig> {
  return {
    type: 'map',
    rawConfigKeys: ['step'],
    configSchema: mapConfigSchema,
    async execute(ctx, config) {
      const items = config.items;
      if (!Array.isArray(items)) throw new SluiceError('VALIDATION_FAILED', `map step ${ctx.step}: with.items must be a list, got ${typeof items}`, { retryable: false });
      const inner = innerType(getSteps(), config, ctx.step);
      const done = new Map((await ctx.items?.load())?.map((i) => [i.index, i]) ?? []);
      const todo = items.map((_, i) => i).filter((i) => done.get(i)?.status !== 'succeeded');
      const size = Math.max(1, config.batch_size ?? 10);
      for (let b = 0; b < todo.length; b += size) {
        const batch = await runBatch(ctx, config, inner, items, todo.slice(b, b + size));
        crashPoint(`map-batch-${b / size + 1}`, ctx.step);
        await ctx.items?.save(batch);
        for (const item of batch) done.set(item.index, item);
        const failed = batch.filter((i) => i.status === 'failed');
        if (failed.length > 0 && (config.on_item_failure ?? 'abort') === 'abort') {
          throw new SluiceError('STEP_FAILED', `map step ${ctx.step}: item ${failed[0]!.index} failed: ${failed[0]!.error?.message}`, {
            retryable: true,
            details: { failed: failed.map((f) => f.index) },
          });
        }
      }
      return summarize(items.length, done);
    },
  };
}

function innerType(steps: StepRegistry, config: MapConfig, name: string): StepType<any> {
  const type = steps.get(config.step?.uses);
  if (!type || type.type === 'map') {
    throw new SluiceError('UNKNOWN_STEP_TYPE', `map step ${name}: step.uses must name a step type other than map, got ${String(config.step?.uses)}`, { retryable: false });
  }
  return type;
}

/** Runs the items of one batch, `concurrency` at a time; never throws for an item's failure. */
async function runBatch(ctx: StepContext, config: MapConfig, inner: StepType<any>, items: unknown[], indices: number[]): Promise<StepItem[]> {
  const results: StepItem[] = [];
  let next = 0;
  const lanes = Array.from({ length: Math.min(indices.length, Math.max(1, config.concurrency ?? 4)) }, async () => {
    while (next < indices.length) {
      const index = indices[next++]!;
      results.push(await runItem(ctx, config, inner, items[index], index));
    }
  });
  await Promise.all(lanes);
  return results.sort((a, b) => a.index - b.index);
}

async function runItem(ctx: StepContext, config: MapConfig, inner: StepType<any>, item: unknown, index: number): Promise<StepItem> {
  try {
    const exprCtx = { input: ctx.input, steps: ctx.steps, run: ctx.run, secrets: ctx.secrets, item, index } as ExpressionContext;
    const itemConfig = await renderStepConfig(inner, config.step.with ?? {}, exprCtx);
    const itemCtx: StepContext = { ...ctx, step: `${ctx.step}[${index}]`, log: (stream, line) => ctx.log(stream, `[${index}] ${line}`) };
    const output = await inner.execute(itemCtx, itemConfig);
    if (output instanceof StepDirective) throw new SluiceError('STEP_FAILED', `step type ${inner.type} cannot run inside map`, { retryable: false });
    return { index, status: 'succeeded', output: output === undefined ? null : output };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const { code, message } = toErrorRecord(err);
    return { index, status: 'failed', error: { code, message } };
  }
}

function summarize(count: number, done: Map<number, StepItem>): MapOutput {
  const out: MapOutput = { items: [], failed: [], succeeded: 0 };
  for (let i = 0; i < count; i++) {
    const item = done.get(i);
    out.items.push(item?.status === 'succeeded' ? (item.output ?? null) : null);
    if (item?.status === 'succeeded') out.succeeded += 1;
    else out.failed.push({ index: i, error: item?.error ?? { code: 'STEP_FAILED', message: 'not run' } });
  }
  return out;
}

const mapConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items', 'step'],
  properties: {
    items: { anyOf: [{ type: 'array' }, { type: 'string' }] },
    step: {
      type: 'object',
      additionalProperties: false,
      required: ['uses'],
      properties: { uses: { type: 'string' }, with: { type: 'object' } },
    },
    batch_size: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string' }] },
    concurrency: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string' }] },
    on_item_failure: { enum: ['abort', 'continue'] },
  },
};
