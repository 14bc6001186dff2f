import type { Engine } from '../engine/engine.js';
import type { RunRecord } from '../store/store.js';
import { DATASET_TRIGGER, RECORD_TRIGGER } from './attribute-step.js';
import { attributeOrder, attributePipelinesOf } from './ordering.js';

/** The attribute pipelines of a dataset in the order they must run (Kahn's order over the fields they read). */
export async function datasetPipelineOrder(engine: Engine, dataset: string): Promise<string[]> {
  const pipelines = attributePipelinesOf(await engine.store.listPipelines(), dataset);
  return attributeOrder(pipelines.map((p) => ({ name: p.name, target: p.definition.attribute!.target, fields: p.definition.attribute!.fields })));
}

/** Runs listed per page while looking for the record-triggered runs of a pipeline. */
const TRIGGERED_PAGE = 500;

/**
 * Runs every attribute pipeline of a dataset one after the other in Kahn's order, each when the one before
 * has finished, so a pipeline reads values its writers just computed (these runs trigger no readers: the
 * chain runs them all). A failed run stops the chain.
 *
 * A dataset run covers every record, so it absorbs the runs that record saves queued for its pipelines (a
 * `dataset import` in a process without a worker queues them): the queued ones are cancelled, and a pipeline's
 * run starts only once its record-triggered runs already running (in any process) have ended, so what they
 * computed is skipped by its input hash instead of being asked of a model twice.
 * `onStart` hears of each run as it starts. Needs a worker (in this process or another) to make progress.
 */
export async function runDatasetPipelines(
  engine: Engine,
  dataset: string,
  options: { force?: boolean; onStart?: (pipeline: string, runId: string) => void } = {},
): Promise<RunRecord[]> {
  const order = await datasetPipelineOrder(engine, dataset);
  for (const name of order) await cancelQueuedTriggeredRuns(engine, name);
  const finished: RunRecord[] = [];
  for (const name of order) {
    await waitForTriggeredRuns(engine, name);
    const input = { trigger: DATASET_TRIGGER, ...(options.force ? { force: true } : {}) };
    const { run } = await engine.startRun(name, { input });
    options.onStart?.(name, run.id);
    const done = await engine.waitForRun(run.id);
    finished.push(done);
    if (done.status !== 'succeeded') break;
  }
  return finished;
}

/**
 * Cancels the runs of the attribute pipelines of `dataset` that record saves queued and no worker has started:
 * a dataset run about to start computes their records. Returns how many were cancelled. Call it before
 * starting a worker in this process, so that the worker does not start them first.
 */
export async function absorbTriggeredRuns(engine: Engine, dataset: string): Promise<number> {
  let cancelled = 0;
  for (const name of await datasetPipelineOrder(engine, dataset)) cancelled += await cancelQueuedTriggeredRuns(engine, name);
  return cancelled;
}

async function cancelQueuedTriggeredRuns(engine: Engine, pipeline: string): Promise<number> {
  let cancelled = 0;
  for (;;) {
    const queued = (await engine.store.listRuns({ pipeline, status: 'queued', limit: TRIGGERED_PAGE })).filter(isRecordTriggered);
    for (const run of queued) {
      // A worker may have started it since it was listed: a started run is waited for instead.
      const current = await engine.getRun(run.id);
      if (current?.status !== 'queued') continue;
      await engine.cancel(run.id);
      cancelled += 1;
    }
    if (queued.length < TRIGGERED_PAGE) return cancelled;
  }
}

async function waitForTriggeredRuns(engine: Engine, pipeline: string): Promise<void> {
  const live = [
    ...(await engine.store.listRuns({ pipeline, status: 'running', limit: TRIGGERED_PAGE })),
    ...(await engine.store.listRuns({ pipeline, status: 'queued', limit: TRIGGERED_PAGE })),
  ].filter(isRecordTriggered);
  // untilSettled: a paused run does not hold the dataset run up forever.
  for (const run of live) await engine.waitForRun(run.id, { untilSettled: true });
}

function isRecordTriggered(run: RunRecord): boolean {
  const input = run.input as { trigger?: unknown } | null;
  return typeof input === 'object' && input !== null && input.trigger === RECORD_TRIGGER;
}
