import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { openStore } from '../../src/store/open-store.js';
import { storeTargets } from '../support/store-targets.js';
import { testSteps, type TestFn } from '../support/test-steps.js';

/** Flow-controlled runs worked by a real worker: held and delayed runs start by themselves, when they should. */
for (const target of storeTargets()) {
  describe(`flow-controlled runs with a worker on ${target.name}`, () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });
    afterAll(() => target.cleanup());

    async function engine(rules: Partial<PipelineSpec>, fns: Record<string, TestFn>, clock?: { now(): number }): Promise<Engine> {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-flow-worker-'));
      const store = await openStore(await target.url(dir));
      const steps = testSteps(fns);
      const e = new Engine({ store, steps, artifactsDir: join(dir, 'artifacts'), onError: (err) => console.error(err), ...(clock ? { clock } : {}) });
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      cleanups.push(() => e.close());
      await e.registerPipeline(normalizePipeline({ name: 'flowing', steps: { work: { uses: 'function', with: { fn: 'work' } } }, ...rules }, { stepTypes: steps }));
      e.startWorker({ concurrency: 4, pollMs: 20 });
      return e;
    }

    it('singleton queue: runs of one key run one after the other, each released when the one before ends', async () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const order: number[] = [];
      let running = 0;
      let peak = 0;
      const e = await engine({ singleton: { mode: 'queue' } }, {
        work: async (ctx) => {
          running += 1;
          peak = Math.max(peak, running);
          order.push((ctx.input as { n: number }).n);
          if ((ctx.input as { n: number }).n === 1) await gate;
          running -= 1;
          return null;
        },
      });
      const runs = [];
      for (const n of [1, 2, 3]) runs.push(await e.startRun('flowing', { input: { n } }));
      // The first run is held at its barrier; the others wait behind it, never claimed meanwhile.
      await expect.poll(() => order, { timeout: 10_000 }).toEqual([1]);
      expect((await e.getRun(runs[1]!.run.id))!.status).toBe('queued');
      open();
      expect((await e.waitForRun(runs[2]!.run.id, { timeout: 20_000 })).status).toBe('succeeded');
      expect(order).toEqual([1, 2, 3]);
      expect(peak).toBe(1);
    });

    it('debounce: the one run of a burst runs once, with the last input, when the clock reaches its run_at', async () => {
      const clock = { t: Date.UTC(2026, 0, 1), now: () => clock.t };
      const seen: unknown[] = [];
      const e = await engine({ debounce: { period: '10s' } }, { work: (ctx) => void seen.push(ctx.input) }, clock);
      const starts = [];
      for (let i = 0; i < 5; i++) {
        starts.push(await e.startRun('flowing', { input: { i } }));
        clock.t += 1_000;
      }
      const id = starts[0]!.run.id;
      expect(starts.every((s) => s.run.id === id)).toBe(true);
      expect((await e.getRun(id))!.status).toBe('queued');
      clock.t = starts[4]!.run.runAt;
      expect((await e.waitForRun(id, { timeout: 20_000 })).status).toBe('succeeded');
      expect(seen).toEqual([{ i: 4 }]);
    });
  });
}
