import type { Engine } from '../engine/engine.js';
import type { RunRecord } from '../store/store.js';
import { DATASET_TRIGGER } from './attribute-step.js';
import { attributeOrder, attributePipelinesOf } from './ordering.js';

/** The attribute pipelines of a dataset in the order they must run (Kahn's order over the fields they read). */
export async function datasetPipelineOrder(engine: Engine, dataset: string): Promise<string[]> {
  const pipelines = attributePipelinesOf(await engine.store.listPipelines(), dataset);
  return attributeOrder(pipelines.map((p) => ({ name: p.name, target: p.definition.attribute!.target, fields: p.definition.attribute!.fields })));
}

/**
 * Runs every attribute pipeline of a dataset one after the other in Kahn's order, each when the one before
 * has finished, so a pipeline reads values its writers just computed (these runs trigger no readers: the
 * chain runs them all). A failed run stops the chain.
 * `onStart` hears of each run as it starts. Needs a worker (in this process or another) to make progress.
 */
export async function runDatasetPipelines(
  engine: Engine,
  dataset: string,
  options: { force?: boolean; onStart?: (pipeline: string, runId: string) => void } = {},
): Promise<RunRecord[]> {
  const finished: RunRecord[] = [];
  for (const name of await datasetPipelineOrder(engine, dataset)) {
    const input = { trigger: DATASET_TRIGGER, ...(options.force ? { force: true } : {}) };
    const { run } = await engine.startRun(name, { input });
    options.onStart?.(name, run.id);
    const done = await engine.waitForRun(run.id);
    finished.push(done);
    if (done.status !== 'succeeded') break;
  }
  return finished;
}
