import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { LiveEvents, type LiveBatch } from '../../src/server/live-events.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe('live event batches', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('hands every stream of one selector the same batch, and each selector only its events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-live-'));
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    const steps = builtinStepTypes({ functions: { noop: () => 1 } });
    const engine = new Engine({ store, steps, onError: () => {}, artifactsDir: join(dir, 'artifacts') });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => engine.close());
    for (const name of ['alpha', 'beta']) await engine.registerPipeline(normalizePipeline({ name, steps: { a: { uses: 'function', with: { name: 'noop' } } } }, { stepTypes: steps }));
    const live = new LiveEvents(engine, { pollMs: 10_000 });
    await live.start();
    cleanups.push(() => live.stop());

    const got = { first: [] as LiveBatch[], second: [] as LiveBatch[], beta: [] as LiveBatch[] };
    await live.subscribe({ pipeline: 'alpha' }, (b) => got.first.push(b));
    await live.subscribe({ pipeline: 'alpha' }, (b) => got.second.push(b));
    await live.subscribe({ pipeline: 'beta' }, (b) => got.beta.push(b));
    await engine.startRuns('alpha', [{ input: 1 }, { input: 2 }]);
    await engine.startRun('beta', { input: 3 });
    // Until the queued events of all three runs arrived (a loaded machine may take a while), then exactly those.
    const count = (batches: LiveBatch[]) => batches.reduce((n, b) => n + b.events.length, 0);
    for (const deadline = Date.now() + 30_000; count(got.first) < 4 || count(got.beta) < 2; ) {
      if (Date.now() > deadline) throw new Error(`live batches did not arrive: ${JSON.stringify(got)}`);
      await new Promise((r) => setTimeout(r, 10));
    }

    expect(got.first.length).toBeGreaterThan(0);
    expect(got.second).toEqual(got.first);
    got.first.forEach((batch, i) => expect(got.second[i]).toBe(batch));
    const alpha = got.first.flatMap((b) => b.events);
    expect(alpha.map((e) => e.type)).toEqual(['run.queued', 'step.queued', 'run.queued', 'step.queued']);
    expect(new Set(alpha.map((e) => e.pipeline))).toEqual(new Set(['alpha']));
    expect(got.beta.flatMap((b) => b.events).map((e) => `${e.pipeline}:${e.type}`)).toEqual(['beta:run.queued', 'beta:step.queued']);
  });
});
