import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes, type StepFunction } from '../../src/steps/builtin.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`map step on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function setup(spec: PipelineSpec, functions: Record<string, StepFunction>) {
      const steps = builtinStepTypes({ functions });
      const engine = new Engine({ store: await backend.create(), steps, onError: (e) => console.error(e) });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      return engine;
    }

    const mapSpec = (name: string, onItemFailure: 'abort' | 'continue'): PipelineSpec => ({
      name,
      steps: {
        fan: {
          uses: 'map',
          with: {
            items: '${{ input.numbers }}',
            batch_size: 4,
            on_item_failure: onItemFailure,
            step: { uses: 'function', with: { name: 'square', args: { n: '${{ item }}', at: '${{ index }}' } } },
          },
        },
      },
    });

    it('fans out over a list in batches and reports failed items with on_item_failure: continue', async () => {
      const engine = await setup(mapSpec('fan-continue', 'continue'), {
        square: (ctx) => {
          const { n } = ctx.args as { n: number };
          if (n === 3) throw new Error('three is unlucky');
          return n * n;
        },
      });
      const { run } = await engine.startRun('fan-continue', { input: { numbers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] } });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const [fan] = await engine.store.listSteps(run.id);
      expect(fan?.output).toEqual({
        items: [1, 4, null, 16, 25, 36, 49, 64, 81, 100],
        failed: [{ index: 2, error: { code: 'STEP_FAILED', message: 'three is unlucky' } }],
        succeeded: 9,
      });
      expect((await engine.store.loadStepItems(run.id, 'fan')).map((i) => i.status)).toHaveLength(10);
    });

    it('retrying a run re-runs only the items that failed', async () => {
      const calls = new Map<number, number>();
      let broken = true;
      const engine = await setup(mapSpec('fan-abort', 'abort'), {
        square: (ctx) => {
          const { n } = ctx.args as { n: number };
          calls.set(n, (calls.get(n) ?? 0) + 1);
          if (broken && n === 6) throw new Error('six fails once');
          return n * n;
        },
      });
      const { run } = await engine.startRun('fan-abort', { input: { numbers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] } });
      const failed = await engine.waitForRun(run.id);
      expect(failed.status).toBe('failed');
      // Batches of 4: the first batch succeeded, the second recorded 6 as failed, the third never ran.
      expect([...calls.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      broken = false;
      await engine.retry(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(Object.fromEntries(calls)).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 1, 8: 1, 9: 1, 10: 1 });
      expect(((await engine.store.listSteps(run.id))[0]?.output as { items: number[] }).items).toEqual([1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
    });

    it('refuses item results from an attempt that lost its lease', async () => {
      const engine = await setup(mapSpec('fan-fence', 'continue'), { square: () => 1 });
      await expect(engine.store.saveStepItems({ attemptId: 999_999, fence: 1, owner: 'nobody' }, 'r-none', 'fan', [{ index: 0, status: 'succeeded', output: 1 }], Date.now())).rejects.toMatchObject({
        code: 'LEASE_LOST',
      });
    });
  });
}
