/**
 * What tracing and metrics read from the store behave alike on every backend: the traceparent a run was started
 * with is kept with it (whether runs are created alone or in a batch), and the queue per pipeline counts queued
 * attempts and dates the oldest ready one, leaving delayed attempts out of the age.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

for (const backend of backends()) {
  describe(`telemetry reads on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function engineWith(now: { t: number }): Promise<Engine> {
      const steps = testSteps({ noop: () => 'ok' });
      const engine = new Engine({ store: await backend.create(), steps, clock: { now: () => now.t }, tracer: false, artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      for (const name of ['a', 'b']) await engine.registerPipeline(normalizePipeline({ name, steps: { s: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      return engine;
    }

    it('keeps the traceparent a run was started with; a malformed one is dropped', async () => {
      const engine = await engineWith({ t: 1_000_000 });
      const { run: alone } = await engine.startRun('a', { traceparent: TP.toUpperCase() });
      const batch = await engine.startRuns('a', [{ traceparent: TP }, {}, { traceparent: 'not-a-traceparent' }]);
      expect(await engine.store.runTraceparent!(alone.id)).toBe(TP);
      expect(await Promise.all(batch.map((c) => engine.store.runTraceparent!(c.run.id)))).toEqual([TP, null, null]);
      expect(await engine.store.runTraceparent!('r-no-such-run')).toBeNull();
    });

    it('counts queued attempts per pipeline and dates the oldest ready one', async () => {
      const now = { t: 1_000_000 };
      const engine = await engineWith(now);
      await engine.startRun('a');
      now.t += 5_000;
      await engine.startRun('a');
      await engine.startRun('b', { runAt: now.t + 60_000 }); // delayed: counted, but not yet waiting
      now.t += 1_000;
      const stats = (await engine.store.queueStats!(now.t)).sort((x, y) => x.pipeline.localeCompare(y.pipeline));
      expect(stats).toEqual([
        { pipeline: 'a', depth: 2, oldestReadyAt: 1_000_000 },
        { pipeline: 'b', depth: 1, oldestReadyAt: null },
      ]);
    });
  });
}
