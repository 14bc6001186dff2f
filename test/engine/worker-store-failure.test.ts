import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

describe('worker when the store fails to record results', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps the results and records them once the store answers again; no slot leaks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-flaky-'));
    dirs.push(dir);
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    let failuresLeft = 3;
    const real = store.completeAttempts.bind(store);
    store.completeAttempts = async (...args) => {
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error('database is restarting');
      }
      return real(...args);
    };
    const steps = testSteps({ work: (ctx) => ctx.step });
    const errors: unknown[] = [];
    const engine = new Engine({ store, steps, onError: (e) => errors.push(e), artifactsDir: join(dir, 'artifacts') });
    try {
      await engine.registerPipeline(
        normalizePipeline({ name: 'flaky', max_parallel: 1, steps: { a: { uses: 'function', with: { fn: 'work' } }, b: { uses: 'function', needs: ['a'], with: { fn: 'work' } } } }, { stepTypes: steps }),
      );
      engine.startWorker({ concurrency: 1, pollMs: 20 });
      const { run } = await engine.startRun('flaky');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(errors).toHaveLength(3);
      expect((await store.listAttempts(run.id)).map((a) => a.status)).toEqual(['succeeded', 'succeeded']);
    } finally {
      await engine.close();
    }
  });
});
