import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

describe('cancelling a run whose step ignores its signal', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('ends the attempt at once: the worker slot it held runs the next run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-deaf-'));
    dirs.push(dir);
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    let started = false;
    // Never settles and never looks at ctx.signal (so the attempt's AbortSignal is never even made).
    const steps = testSteps({
      deaf: () => {
        started = true;
        return new Promise(() => {});
      },
      quick: () => 'done',
    });
    const engine = new Engine({ store, steps, onError: () => undefined, artifactsDir: join(dir, 'artifacts') });
    try {
      await engine.registerPipeline(normalizePipeline({ name: 'deaf', steps: { a: { uses: 'function', with: { fn: 'deaf' } } } }, { stepTypes: steps }));
      await engine.registerPipeline(normalizePipeline({ name: 'quick', steps: { a: { uses: 'function', with: { fn: 'quick' } } } }, { stepTypes: steps }));
      engine.startWorker({ concurrency: 1, pollMs: 20 });
      const { run } = await engine.startRun('deaf');
      while (!started) await new Promise((r) => setTimeout(r, 5));
      await engine.cancel(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('cancelled');
      const next = await engine.startRun('quick');
      expect((await engine.waitForRun(next.run.id)).status).toBe('succeeded');
    } finally {
      await engine.close();
    }
  });
});
