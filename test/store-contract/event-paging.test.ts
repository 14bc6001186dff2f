import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { RunEvent } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

for (const backend of backends()) {
  describe(`event paging on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('pages through events from any id, with any limit, and returns what was published', async () => {
      const store = await backend.create();
      const steps = testSteps({ echo: (ctx) => ({ step: ctx.step }) });
      const engine = new Engine({ store, steps, artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      const published: RunEvent[] = [];
      engine.subscribe((e) => published.push(e));
      const fn = { uses: 'function', with: { fn: 'echo' } };
      await engine.registerPipeline(normalizePipeline({ name: 'paging', steps: { a: fn, b: fn, c: { ...fn, needs: ['a', 'b'] } } }, { stepTypes: steps }));
      // Several runs created, started and finished in the same transactions interleave their events.
      const created = await engine.startRuns('paging', [{ input: 1 }, { input: 2 }, { input: 3 }]);
      engine.startWorker({ pollMs: 20 });
      for (const c of created) expect((await engine.waitForRun(c.run.id)).status).toBe('succeeded');

      const all = await store.listEvents({ limit: 10_000 });
      expect(all.length).toBeGreaterThanOrEqual(3 * 9);
      for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
      expect([...published].sort((x, y) => x.id - y.id)).toEqual(all);
      expect(await store.latestEventId?.()).toBe(all.at(-1)!.id);

      for (let i = 0; i <= all.length; i++) {
        const afterId = i === 0 ? 0 : all[i - 1]!.id;
        for (const limit of [1, 2, 3, 1000]) expect(await store.listEvents({ afterId, limit })).toEqual(all.slice(i, i + limit));
      }
      const runId = created[1]!.run.id;
      const ofRun = all.filter((e) => e.runId === runId);
      for (let i = 0; i <= ofRun.length; i++) {
        const afterId = i === 0 ? 0 : ofRun[i - 1]!.id;
        expect(await store.listEvents({ runId, afterId, limit: 2 })).toEqual(ofRun.slice(i, i + 2));
      }
    });
  });
}
