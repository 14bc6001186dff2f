/**
 * A worker stopped by a signal hands its attempts back at once, on every backend: the attempt it held ends
 * (`expired`) and the step is queued again, claimable by any worker without waiting for the lease to expire.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { backends } from '../support/backends.js';
import { sleep, testSteps, type TestFn } from '../support/test-steps.js';

for (const backend of backends()) {
  describe(`interrupted worker on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('ends the running attempt and queues its step again at once; a new worker runs it', async () => {
      let calls = 0;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const work: TestFn = async (ctx) => {
        calls += 1;
        if (calls > 1) return 'done';
        started();
        await sleep(60_000, ctx.signal);
        return 'too late';
      };
      const steps = testSteps({ work });
      const engine = new Engine({ store: await backend.create(), steps, onError: (e) => console.error(e), artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline({ name: 'stop', steps: { work: { uses: 'function', with: { fn: 'work' } } } }, { stepTypes: steps }));
      // The lease is far longer than the test: only a hand-back can make the step claimable again.
      engine.startWorker({ pollMs: 20, leaseMs: 600_000 });
      const { run } = await engine.startRun('stop');
      await running;

      await engine.interruptWorker();
      expect((await engine.store.listSteps(run.id)).map((s) => s.status)).toEqual(['queued']);
      expect((await engine.store.listAttempts(run.id, 'work')).map((a) => a.status)).toEqual(['expired', 'queued']);
      expect((await engine.store.getRun(run.id))?.status).toBe('running');

      engine.startWorker({ pollMs: 20, leaseMs: 600_000 });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(calls).toBe(2);
      expect((await engine.store.listSteps(run.id))[0]?.output).toBe('done');
    });
  });
}
