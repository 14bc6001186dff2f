import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes, type StepFunction } from '../../src/steps/builtin.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`child runs (pipeline step) on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function setup(specs: PipelineSpec[], functions: Record<string, StepFunction>) {
      const steps = builtinStepTypes({ functions });
      const engine = new Engine({ store: await backend.create(), steps, onError: (e) => console.error(e) });
      engines.push(engine);
      for (const spec of specs) await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50, heartbeatMs: 50 });
      return engine;
    }

    const fn = (name: string, extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { name }, ...extra });

    it('runs another pipeline as a child and ends with its outputs', async () => {
      const engine = await setup(
        [
          { name: 'child', steps: { double: fn('double'), label: fn('label', { needs: ['double'] }) } },
          { name: 'parent', steps: { sub: { uses: 'pipeline', with: { pipeline: 'child', input: { n: '${{ input.n }}' } } }, after: fn('after', { needs: ['sub'] }) } },
        ],
        {
          double: (ctx) => (ctx.input as { n: number }).n * 2,
          label: (ctx) => `got ${String(ctx.steps['double'])}`,
          after: (ctx) => (ctx.steps['sub'] as { outputs: unknown }).outputs,
        },
      );
      const { run } = await engine.startRun('parent', { input: { n: 21 } });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const [sub, after] = await engine.store.listSteps(run.id);
      const childId = (sub!.output as { child_run: string }).child_run;
      expect(sub!.output).toMatchObject({ status: 'succeeded', outputs: { label: 'got 42' } });
      expect(after!.output).toEqual({ label: 'got 42' });
      const child = await engine.store.getRun(childId);
      expect(child).toMatchObject({ pipeline: 'child', status: 'succeeded', parentRunId: run.id, parentStep: 'sub', input: { n: 21 } });
    });

    it('fails the parent step when the child fails, and retries it with a new child run', async () => {
      let calls = 0;
      const engine = await setup(
        [
          { name: 'flaky-child', steps: { work: fn('work') } },
          { name: 'flaky-parent', steps: { sub: { uses: 'pipeline', with: { pipeline: 'flaky-child' }, retry: { attempts: 2, delay: '1ms' } } } },
        ],
        {
          work: () => {
            calls += 1;
            if (calls === 1) throw new Error('first child fails');
            return 'ok';
          },
        },
      );
      const { run } = await engine.startRun('flaky-parent');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const children = (await engine.store.listRuns({ pipeline: 'flaky-child' })).map((r) => r.status).sort();
      expect(children).toEqual(['failed', 'succeeded']);
    });

    it('cancelling the parent cancels the child run', async () => {
      const engine = await setup(
        [
          { name: 'slow-child', steps: { wait: fn('wait') } },
          { name: 'slow-parent', steps: { sub: { uses: 'pipeline', with: { pipeline: 'slow-child' } } } },
        ],
        { wait: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
      );
      const { run } = await engine.startRun('slow-parent');
      let childId: string | undefined;
      for (const deadline = Date.now() + 30_000; !childId && Date.now() < deadline; ) {
        childId = (await engine.store.listRuns({ pipeline: 'slow-child' }))[0]?.id;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(childId).toBeDefined();
      await engine.cancel(run.id);
      expect((await engine.waitForRun(childId!)).status).toBe('cancelled');
      expect((await engine.store.getRun(run.id))?.status).toBe('cancelled');
    });

    it('fails the step clearly when the child pipeline is not registered', async () => {
      const engine = await setup([{ name: 'orphan', steps: { sub: { uses: 'pipeline', with: { pipeline: 'nowhere' } } } }], {});
      const { run } = await engine.startRun('orphan');
      expect((await engine.waitForRun(run.id)).status).toBe('failed');
      expect((await engine.store.listSteps(run.id))[0]?.error).toMatchObject({ code: 'PIPELINE_NOT_FOUND' });
    });
  });
}
