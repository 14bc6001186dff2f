/** Pipeline stats per time bucket (the dashboard's charts), on every backend. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

const HOUR = 3600_000;

for (const backend of backends()) {
  describe(`stats series on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('splits runs, durations, tokens and cost into equal buckets up to `until`', async () => {
      const store = await backend.create();
      const steps = testSteps({
        work: (ctx) => {
          ctx.reportUsage({ model: 'm', tokensIn: 10, tokensOut: 4, cost: 0.5 });
          return 'ok';
        },
        boom: () => {
          throw new Error('boom');
        },
      });
      const engine = new Engine({ store, steps, onError: () => {} });
      engines.push(engine);
      const spec = (fn: string) => ({ name: 'charted', steps: { a: { uses: 'function', with: { fn }, retry: { attempts: 1 } } } });
      await engine.registerPipeline(normalizePipeline(spec('work'), { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      for (let i = 0; i < 2; i++) await engine.waitForRun((await engine.startRun('charted', { input: { i } })).run.id);
      await engine.registerPipeline(normalizePipeline(spec('boom'), { stepTypes: steps }));
      await engine.waitForRun((await engine.startRun('charted')).run.id);

      const now = Date.now();
      const stats = await (store as Required<Pick<Store, 'pipelineStats'>>).pipelineStats('charted', now - 4 * HOUR, { buckets: 4, until: now + 1 });
      expect(stats.runs.byStatus).toEqual({ succeeded: 2, failed: 1 });
      const series = stats.series!;
      expect(series).toHaveLength(4);
      expect(series[0]!.start).toBe(now - 4 * HOUR);
      expect(series.at(-1)!.end).toBe(now + 1);
      for (let i = 1; i < 4; i++) expect(series[i]!.start).toBe(series[i - 1]!.end);
      expect(series.slice(0, 3).map((b) => b.byStatus)).toEqual([{}, {}, {}]);
      const last = series[3]!;
      expect(last.byStatus).toEqual({ succeeded: 2, failed: 1 });
      expect(last.duration.count).toBe(3);
      expect(last.duration.p50).not.toBeNull();
      expect(last.tokensIn).toBe(20);
      expect(last.tokensOut).toBe(8);
      expect(last.cost).toBeCloseTo(1);
      // Without `series` the answer is the aggregate alone.
      expect((await (store as Required<Pick<Store, 'pipelineStats'>>).pipelineStats('charted', now - HOUR)).series).toBeUndefined();
    });
  });
}
