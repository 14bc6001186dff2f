import type { Engine } from '../engine/engine.js';
import { evalSummaryView } from '../evals/eval-views.js';
import type { StoredPipeline } from '../store/store.js';
import { runView } from './views.js';

/**
 * What the dashboard's pipelines page shows of a pipeline beyond its registry entry: its newest run, its eval
 * counts, and for an attribute pipeline the mean confidence of its values. One request answers them for every
 * pipeline (`GET /api/pipelines?summary=true`) instead of three per pipeline.
 */
export async function pipelineSummary(engine: Engine, p: StoredPipeline): Promise<Record<string, unknown>> {
  const attr = p.definition.attribute;
  const [lastRun, evals, values] = await Promise.all([
    engine.store.listRuns({ pipeline: p.name, limit: 1 }),
    engine.store.evalSummary(p.name),
    attr ? engine.store.attributeSummary(attr.dataset, attr.target) : undefined,
  ]);
  return {
    last_run: lastRun[0] ? runView(lastRun[0]) : null,
    evals: evalSummaryView(evals),
    avg_confidence: values?.avgConfidence ?? null,
  };
}
