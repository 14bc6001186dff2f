import { computeValues, type ComputeCase, type ComputedValue } from '../attributes/compute.js';
import type { Engine } from '../engine/engine.js';
import type { EvalCase, EvalResult, EvalSummary } from '../store/evals.js';
import { summarize } from '../core/eval-cases.js';

/** The cases of a pipeline with their last results, and their counts. */
export interface EvalReport {
  pipeline: string;
  evals: EvalCase[];
  summary: EvalSummary;
}

export interface RunEvalsOptions {
  /** Aborts the pipeline calls (the results of an aborted pass are not stored). */
  signal?: AbortSignal;
}

/**
 * Runs every eval case of the latest version of a pipeline in memory (one `computeValues` call for all cases;
 * no run is recorded), compares each output with the desired one and stores the results. A case the pipeline
 * failed on is stored with its error and counts as failed. PIPELINE_NOT_FOUND when there is no such pipeline.
 */
export async function runEvals(engine: Engine, pipelineName: string, options: RunEvalsOptions = {}): Promise<EvalReport> {
  const pipeline = await engine.requirePipeline(pipelineName);
  const cases = await engine.store.listEvals(pipeline.name);
  if (cases.length === 0) return { pipeline: pipeline.name, evals: [], summary: summarize([]) };
  const computed = await computeValues(engine, pipeline, cases.map(toComputeCase), options.signal ? { signal: options.signal } : {});
  options.signal?.throwIfAborted();
  const results = cases.map((c, i) => toResult(c, computed[i]));
  await engine.store.saveEvalResults(pipeline.name, results, engine.clock.now());
  return loadEvalReport(engine, pipeline.name);
}

/** The stored cases and results of a pipeline (nothing runs). */
export async function loadEvalReport(engine: Engine, pipelineName: string): Promise<EvalReport> {
  const evals = await engine.store.listEvals(pipelineName);
  return { pipeline: pipelineName, evals, summary: summarize(evals) };
}

function toComputeCase(c: EvalCase): ComputeCase {
  return c.recordId !== null ? { recordId: c.recordId } : { input: c.input ?? {} };
}

function toResult(c: EvalCase, v: ComputedValue | undefined): EvalResult {
  const subject = { recordId: c.recordId, input: c.input };
  if (!v) return { id: c.id, subject, actualOutput: null, justification: null, confidence: null, error: { code: 'INTERNAL', message: 'the pipeline gave no result for this case' } };
  return { id: c.id, subject, actualOutput: v.error ? null : v.value, justification: v.justification, confidence: v.confidence, error: v.error };
}
