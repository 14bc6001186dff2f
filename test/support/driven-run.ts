/** A run started on a fresh store of a backend, for tests that then drive its attempts through the store by hand. */
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/store.js';
import type { Backend } from './backends.js';
import { testSteps } from './test-steps.js';

/**
 * Registers `spec` (its steps `uses: function` with `with.fn: x`, a function returning 1) on a new store of `backend`
 * and starts a run of it, with no worker. The engine goes into `engines`, for the caller to close.
 */
export async function startDrivenRun(backend: Backend, spec: PipelineSpec, engines: Engine[]): Promise<{ engine: Engine; store: Store; runId: string }> {
  const store = await backend.create();
  const steps = testSteps({ x: () => 1 });
  const engine = new Engine({ store, steps, onError: (e) => console.error(e) });
  engines.push(engine);
  await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
  const { run } = await engine.startRun(spec.name);
  return { engine, store, runId: run.id };
}
