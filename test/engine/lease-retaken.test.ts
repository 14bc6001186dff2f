/**
 * A worker that lost a step's lease and then leased the same step again: an attempt's id is its step's, so the two
 * leases share an id and only the fence tells them apart. The earlier execution is cancelled, its result and its log
 * lines are dropped, and the later lease runs, logs and records as if it were alone. Times come from an injected
 * clock; the ordering from barriers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { storeArtifacts } from '../../src/artifacts/store-artifacts.js';
import { backends } from '../support/backends.js';
import { testSteps } from '../support/test-steps.js';

const LEASE_MS = 60_000;

/** A promise and the function that resolves it. */
function barrier<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

for (const backend of backends()) {
  describe(`a step leased again by the worker that lost it, on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    it('cancels the earlier execution, drops its result and logs, and records the later one', async () => {
      const store = await backend.create();
      const clock = { t: Date.parse('2026-06-01T00:00:00Z'), now: () => clock.t };
      const firstStarted = barrier<AbortSignal>();
      const firstMayReturn = barrier();
      const firstReturned = barrier();
      let calls = 0;
      const steps = testSteps({
        slow: async (ctx) => {
          calls += 1;
          if (calls === 1) {
            ctx.log('stdout', 'first lease');
            firstStarted.open(ctx.signal);
            await firstMayReturn.promise;
            ctx.log('stdout', 'first lease, after it was lost');
            firstReturned.open();
            return 'first';
          }
          ctx.log('stdout', 'second lease');
          return 'second';
        },
      });
      const errors: unknown[] = [];
      const engine = new Engine({ store, steps, clock, onError: (e) => errors.push(e), artifacts: storeArtifacts(store) ?? mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline({ name: 'retaken', steps: { a: { uses: 'function', with: { fn: 'slow' } } } }, { stepTypes: steps }));
      // The worker's heartbeat never runs here (one after the clock moved would renew the lease), nor its periodic
      // reaper: the lease expires when the clock says.
      engine.startWorker({ pollMs: 10, reapMs: 3_600_000, heartbeatMs: 3_600_000, leaseMs: LEASE_MS });
      const { run } = await engine.startRun('retaken');
      const firstSignal = await firstStarted.promise;
      const [first] = await store.listAttempts(run.id, 'a');

      // The lease expires; the step is queued again and, once its time has come, this same worker takes it.
      clock.t += 2 * LEASE_MS;
      // This reap, or the worker's first one (on PostgreSQL once it is elected leader, which may come late on a
      // busy machine), expires the lease; the attempts below show it was expired once. While the worker's reap holds
      // the reaper's lock (having read the clock before it moved), this one does nothing: reap until it is expired.
      while ((await store.listAttempts(run.id, 'a'))[0]?.status === 'running') {
        await store.reap(clock.t);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const done = await engine.waitForRun(run.id, { timeout: 30_000 });
      expect(done.status).toBe('succeeded');
      expect(firstSignal.aborted).toBe(true);

      firstMayReturn.open();
      await firstReturned.promise;
      // The earlier execution's result reaches the worker a few turns of the event loop later, and changes nothing.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));

      expect((await store.listSteps(run.id))[0]?.output).toBe('second');
      const attempts = await store.listAttempts(run.id, 'a');
      expect(attempts.map((a) => [a.number, a.status])).toEqual([
        [1, 'expired'],
        [2, 'succeeded'],
      ]);
      expect(attempts[1]?.owner).toBe(first?.owner);
      expect((await store.listLogs(run.id, 'a')).map((l) => [l.attempt, l.line])).toEqual([
        [1, 'first lease'],
        [2, 'second lease'],
      ]);
      expect(errors).toEqual([]);
    });
  });
}
