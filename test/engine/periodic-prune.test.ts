/** The leading process prunes on a timer: a run older than the store-wide retention disappears by itself. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

describe('periodic prune', () => {
  it('the leading worker prunes runs older than the retention and keeps newer ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-periodic-prune-'));
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    let now = Date.parse('2026-01-01T00:00:00Z');
    const steps = testSteps({ noop: () => null });
    const engine = new Engine({ store, steps, clock: { now: () => now }, retention: '1d', artifactsDir: join(dir, 'a') });
    try {
      await engine.registerPipeline(normalizePipeline({ name: 'p', steps: { s: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      engine.startWorker({ pollMs: 10 });
      const old = (await engine.waitForRun((await engine.startRun('p')).run.id)).id;
      now += 2 * 86_400_000;
      const fresh = (await engine.waitForRun((await engine.startRun('p')).run.id)).id;
      const pruned: number[] = [];
      const stop = engine.startSchedules({ cron: false, pruneEveryMs: 20, onPruned: (r) => pruned.push(r.runs) });
      for (let i = 0; i < 400 && pruned.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await stop();
      expect(pruned).toEqual([1]);
      expect(await store.getRun(old)).toBeUndefined();
      expect((await store.getRun(fresh))?.status).toBe('succeeded');
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
