import { SluiceError } from '../core/errors.js';
import { referencedSteps, renderTemplate } from '../core/expressions.js';
import type { Pipeline } from '../core/model.js';

/**
 * Renders the `concurrency_key` of every keyed step of a new run, when the run is created: the key sees `input`
 * and `run` (`id`, `attempt` = 1, `pipeline`, `version`), not step outputs or secrets (keys are stored). A key
 * that renders to a string is used as it is; other values as their JSON; undefined as the empty string. Returns
 * undefined when no step has a key. Throws EXPRESSION_FAILED naming the expression.
 */
export async function renderConcurrencyKeys(
  pipeline: Pipeline,
  run: { id: string; pipeline: string; version: number; input: unknown },
): Promise<Record<string, string> | undefined> {
  let keys: Record<string, string> | undefined;
  for (const step of pipeline.steps) {
    if (step.concurrencyKey === null) continue;
    const reads = referencedSteps({ if: null, with: { key: step.concurrencyKey } });
    if (reads.length > 0) {
      throw new SluiceError(
        'EXPRESSION_FAILED',
        `concurrency_key of step ${step.name} reads steps.${reads[0]}: the key is rendered when the run is created, from input and run only`,
        { retryable: false },
      );
    }
    const ctx = { input: run.input, steps: {}, run: { id: run.id, attempt: 1, pipeline: run.pipeline, version: run.version }, secrets: {} };
    const value = await renderTemplate(step.concurrencyKey, ctx);
    keys ??= {};
    keys[step.name] = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
  }
  return keys;
}
