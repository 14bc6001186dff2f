import type { Engine } from '../engine/engine.js';
import type { StoredPipeline } from '../store/store.js';
import type { AttributeRunStats } from './attribute-step.js';

/** What `stats` adds for an attribute pipeline: its values (count, mean confidence, by status) and its last run. */
export async function attributeStats(engine: Engine, pipeline: StoredPipeline): Promise<Record<string, unknown> | null> {
  const attr = pipeline.definition.attribute;
  if (!attr) return null;
  const summary = await engine.store.attributeSummary(attr.dataset, attr.target);
  const [last] = await engine.store.listRuns({ pipeline: pipeline.name, limit: 1 });
  let lastRun: Record<string, unknown> | null = null;
  if (last) {
    const output = (await engine.store.getStepOutputs(last.id, ['attribute']))['attribute'] as AttributeRunStats | undefined;
    const [step] = await engine.store.listSteps(last.id);
    const failedStats = (step?.error as { details?: { stats?: AttributeRunStats } } | null)?.details?.stats;
    lastRun = { id: last.id, status: last.status, created_at: last.createdAt, finished_at: last.finishedAt, ...(output ?? failedStats ?? {}) };
  }
  return {
    dataset: attr.dataset,
    target: attr.target,
    values: summary.values,
    avg_confidence: summary.avgConfidence,
    by_status: summary.byStatus,
    last_run: lastRun,
  };
}
