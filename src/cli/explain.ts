import { describeExplain, type CacheExplain } from '../core/cache-key.js';
import type { Engine } from '../engine/engine.js';
import type { RunRecord, StepRecord } from '../store/store.js';

/** Why one step of a run ran, was cached, or neither. */
export interface StepExplanation {
  step: string;
  status: string;
  /** The stored explanation (null when the step's cache is off or it did not settle through the cache). */
  cache_explain: CacheExplain | null;
  /** One line for people. */
  reason: string;
}

/** What `sluice run --explain` reports: per step of the run, why it ran or was cached, read from the store. */
export async function explainRun(engine: Engine, run: RunRecord): Promise<StepExplanation[]> {
  const [steps, pipeline] = await Promise.all([engine.store.listSteps(run.id), engine.store.getPipeline(run.pipeline, run.version)]);
  const cacheOff = new Set(pipeline?.definition.steps.filter((s) => !s.cache).map((s) => s.name) ?? []);
  return steps.map((s) => ({ step: s.name, status: s.status, cache_explain: s.cacheExplain, reason: reasonOf(s, cacheOff.has(s.name)) }));
}

function reasonOf(s: StepRecord, cacheOff: boolean): string {
  if (s.cacheExplain) return describeExplain(s.cacheExplain);
  if (s.status === 'skipped') return 'skipped (its `if` was false, it is disabled, or not selected)';
  if (cacheOff && s.status === 'succeeded') return 'ran: cache is off for this step (cache: false)';
  if (s.status === 'failed') return `failed: ${s.error?.message ?? 'no error recorded'}`;
  return s.status;
}

/** The explanation as aligned text lines. */
export function formatExplanations(rows: StepExplanation[]): string {
  const width = Math.max(4, ...rows.map((r) => r.step.length));
  const lines = rows.map((r) => `  ${r.step.padEnd(width)}  ${r.status.padEnd(9)}  ${r.reason}`);
  return `why each step ran or was cached:\n${lines.join('\n')}\n`;
}
