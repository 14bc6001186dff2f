import type { AttributeRunStats } from '../attributes/attribute-step.js';
import type { Engine } from '../engine/engine.js';
import { decisionView } from '../server/contract-views.js';
import { runView, stepView } from '../server/views.js';
import { storedFlowView } from '../server/flow-view.js';
import type { RunRecord } from '../store/store.js';

/**
 * What `--json` prints for a run: the run as `GET /api/runs/:id` answers it (snake_case), with each step's
 * status, output, error and attempts, and its `flow` when flow rules touched it; `decisions` adds the gate and human decisions (`sluice status`). An
 * attribute pipeline's run adds `stats`: what it computed, skipped and failed.
 */
export async function runJson(engine: Engine, run: RunRecord, options: { decisions?: boolean } = {}): Promise<Record<string, unknown>> {
  const [steps, attempts] = await Promise.all([engine.store.listSteps(run.id), engine.store.listAttempts(run.id)]);
  const view: Record<string, unknown> = { ...runView(run), steps: steps.map((s) => stepView(s, attempts)), ...(await storedFlowView(engine.store, run.id)) };
  if (options.decisions) view['decisions'] = (await engine.store.listDecisions(run.id)).map(decisionView);
  const stats = await attributeRunStats(engine, run);
  if (stats) view['stats'] = stats;
  return view;
}

/** An attribute pipeline's run stats: its `attribute` step's output, or the stats kept with its error. */
export async function attributeRunStats(engine: Engine, run: RunRecord): Promise<AttributeRunStats | undefined> {
  const [step] = await engine.store.listSteps(run.id);
  if (step?.name !== 'attribute' || (await engine.store.getPipeline(run.pipeline, run.version))?.definition.attribute === undefined) return undefined;
  const output = (await engine.store.getStepOutputs(run.id, ['attribute']))['attribute'];
  return (output ?? (step.error as { details?: { stats?: unknown } } | null)?.details?.stats) as AttributeRunStats | undefined;
}
