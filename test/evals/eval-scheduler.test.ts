/** Eval re-runs: one pass at a time per pipeline (a request meanwhile makes exactly one more), and the nightly pass. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { EvalScheduler } from '../../src/evals/eval-scheduler.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe('eval scheduler', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  /** An engine whose `slow` function counts its calls and waits until released. */
  async function setup(now = { value: Date.UTC(2026, 0, 1, 2, 0) }) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-evals-'));
    const store = new SqliteStore({ path: join(dir, 'sluice.db') });
    await store.migrate();
    let calls = 0;
    let release: () => void = () => undefined;
    let gate = Promise.resolve();
    const functions = {
      slow: async () => {
        calls += 1;
        await gate;
        return 42;
      },
    };
    const engine = new Engine({ store, steps: builtinStepTypes({ functions }), clock: { now: () => now.value }, onError: () => {}, artifactsDir: join(dir, 'artifacts') });
    const spec = { name: 'answer', steps: { ask: { uses: 'function', with: { name: 'slow' } } } };
    const pipeline = normalizePipeline(spec, { stepTypes: engine.steps });
    await engine.registerPipeline(pipeline);
    await store.replaceEvals('answer', [{ input: {}, desiredOutput: 42 }], 1);
    cleanups.push(async () => {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      engine,
      now,
      calls: () => calls,
      hold: () => {
        gate = new Promise((r) => (release = r));
      },
      release: () => release(),
    };
  }

  it('runs one more pass, not one per request, when runs finish during a pass', async () => {
    const t = await setup();
    const reports: number[] = [];
    const scheduler = new EvalScheduler(t.engine, { onReport: (r) => reports.push(r.summary.passed) });
    t.hold();
    scheduler.request('answer');
    await until(() => t.calls() === 1);
    scheduler.request('answer');
    scheduler.request('answer');
    scheduler.request('answer');
    t.release();
    await scheduler.idle();
    expect(t.calls()).toBe(2);
    expect(reports).toEqual([1, 1]);
    scheduler.request('answer');
    await scheduler.idle();
    expect(t.calls()).toBe(3);
    await scheduler.stop();
  });

  it('re-runs after a run.succeeded of the pipeline', async () => {
    const t = await setup();
    const scheduler = new EvalScheduler(t.engine);
    scheduler.start();
    const { run } = await t.engine.startRun('answer');
    t.engine.startWorker({ runId: run.id });
    await t.engine.waitForRun(run.id);
    await until(() => t.calls() === 2);
    await scheduler.idle();
    expect((await t.engine.store.listEvals('answer'))[0]).toMatchObject({ passed: true, actualOutput: 42 });
    await scheduler.stop();
  });

  it('runs every pipeline with cases once when the nightly slot comes', async () => {
    const t = await setup();
    const scheduler = new EvalScheduler(t.engine, { cron: '0 3 * * *', timezone: 'UTC', tickMs: 60_000 });
    scheduler.start();
    expect(await scheduler.tick(Date.UTC(2026, 0, 1, 2, 59))).toBe(0);
    expect(await scheduler.tick(Date.UTC(2026, 0, 1, 3, 0, 1))).toBe(1);
    await scheduler.idle();
    expect(t.calls()).toBe(1);
    expect(await scheduler.tick(Date.UTC(2026, 0, 1, 12, 0))).toBe(0);
    // A second process sharing the store does not run the same slot again.
    const other = new EvalScheduler(t.engine, { cron: '0 3 * * *', timezone: 'UTC', tickMs: 60_000 });
    other.start();
    expect(await other.tick(Date.UTC(2026, 0, 1, 3, 0, 2))).toBe(0);
    await Promise.all([scheduler.stop(), other.stop()]);
  });

  it('refuses an invalid cron pattern', async () => {
    const t = await setup();
    expect(() => new EvalScheduler(t.engine, { cron: 'every night' })).toThrow(/evals cron "every night" is not a valid cron pattern/);
  });
});

/** Polls `check` with a deadline a loaded machine does not reach. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}
