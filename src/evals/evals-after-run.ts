import type { Engine } from '../engine/engine.js';
import type { RunEvent } from '../store/store.js';
import { runEvals, type EvalReport } from './run-evals.js';

/** Whether `event` is one after which its pipeline's evals run: a run that succeeded. */
export function runsEvalsAfter(event: Pick<RunEvent, 'type'>): boolean {
  return event.type === 'run.succeeded';
}

/**
 * Runs the evals of `pipeline` after one of its runs succeeded: the pipeline's current outputs are compared with
 * its eval cases. Null when the pipeline has no eval cases (nothing ran). Used by `sluice run`, `sluice dataset
 * run` and the server's eval scheduler, so all of them do the same.
 */
export async function evalsAfterRun(engine: Engine, pipeline: string, options: { signal?: AbortSignal } = {}): Promise<EvalReport | null> {
  if ((await engine.store.evalSummary(pipeline)).total === 0) return null;
  return runEvals(engine, pipeline, options.signal ? { signal: options.signal } : {});
}
