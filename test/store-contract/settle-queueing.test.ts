import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import type { Engine } from '../../src/engine/engine.js';
import type { ClaimedAttempt, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { startDrivenRun } from '../support/driven-run.js';

// Settling a step queues what became ready into the slot it frees (and any other free slot) and counts both in the
// run's counters. Driven through the store, one result at a time, with no worker: each claim shows exactly what
// the settle queued, so a wrong order or a wrong count of active steps shows as a wrong or extra attempt.
for (const backend of backends()) {
  describe(`settling and queueing on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    const step = (extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { fn: 'x' }, ...extra });

    async function setup(spec: PipelineSpec): Promise<{ engine: Engine; store: Store; runId: string }> {
      const started = await startDrivenRun(backend, spec, engines);
      // The store's clock from here on: after the run's creation, one millisecond a call.
      clock = Date.now() + 1000;
      return started;
    }

    let clock = 0;
    const claim = async (store: Store) => (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
    const succeed = async (store: Store, a: ClaimedAttempt) => {
      const batch = await store.completeAttempts([{ attemptId: a.id, fence: a.fence, owner: 'w', outcome: 'succeeded', output: a.step, processingMs: 1 }], ++clock);
      expect(batch.accepted).toEqual([a.id]);
      return batch.events.filter((e) => e.type === 'step.queued').map((e) => e.step);
    };
    const names = (attempts: ClaimedAttempt[]) => attempts.map((a) => a.step).sort();

    it('fills the slot a settle frees with the ready step of highest priority, then the first in step order', async () => {
      const { store, runId } = await setup({
        name: 'slots',
        max_parallel: 2,
        steps: { a: step(), b: step(), c: step(), d: step({ priority: 5 }), e: step(), f: step({ needs: ['a'], priority: 9 }) },
      });
      const first = await claim(store);
      expect(names(first)).toEqual(['a', 'd']);
      const byName = new Map(first.map((a) => [a.step, a]));
      // a's settle makes f ready: f outranks b and c, which were ready before.
      expect(await succeed(store, byName.get('a')!)).toEqual(['f']);
      const [f, ...extraF] = await claim(store);
      expect([f?.step, extraF]).toEqual(['f', []]);
      expect(await succeed(store, byName.get('d')!)).toEqual(['b']);
      const [b, ...extraB] = await claim(store);
      expect([b?.step, extraB]).toEqual(['b', []]);
      expect(await succeed(store, f!)).toEqual(['c']);
      expect(await succeed(store, b!)).toEqual(['e']);
      const rest = await claim(store);
      expect(names(rest)).toEqual(['c', 'e']);
      expect(await succeed(store, rest[0]!)).toEqual([]);
      expect((await store.getRun(runId))?.status).toBe('running');
      await succeed(store, rest[1]!);
      expect((await store.getRun(runId))?.status).toBe('succeeded');
      expect((await store.listSteps(runId)).map((s) => [s.name, s.attempts])).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [n, 1]));
    });

    it('a step settling in a paused run queues nothing, and resuming fills only the free slots', async () => {
      const { store, runId } = await setup({ name: 'paused', max_parallel: 2, steps: { a: step(), b: step(), c: step(), d: step(), e: step({ needs: ['a'] }) } });
      const first = await claim(store);
      expect(names(first)).toEqual(['a', 'b']);
      await store.controlRun(runId, 'pause', ++clock);
      // a's settle releases e and frees a slot, but a paused run queues nothing.
      expect(await succeed(store, first.find((x) => x.step === 'a')!)).toEqual([]);
      expect(await claim(store)).toEqual([]);
      const resumed = await store.controlRun(runId, 'resume', ++clock);
      // b still runs: one slot is free, and c (step order) takes it before d and e.
      expect(resumed.events.filter((e) => e.type === 'step.queued').map((e) => e.step)).toEqual(['c']);
      const [c, ...extra] = await claim(store);
      expect([c?.step, extra]).toEqual(['c', []]);
      expect(await succeed(store, first.find((x) => x.step === 'b')!)).toEqual(['d']);
      expect(await succeed(store, c!)).toEqual(['e']);
      const last = await claim(store);
      expect(names(last)).toEqual(['d', 'e']);
      for (const a of last) await succeed(store, a);
      expect((await store.getRun(runId))?.status).toBe('succeeded');
    });

    it('a step that blocks in a paused run queues nothing until the run is resumed', async () => {
      const { store, runId } = await setup({ name: 'paused-block', max_parallel: 1, steps: { a: step(), b: step() } });
      const [a] = await claim(store);
      expect(a?.step).toBe('a');
      await store.controlRun(runId, 'pause', ++clock);
      // a waits for a person now; its slot is free, but a paused run starts nothing.
      const blocked = await store.completeAttempts([{ attemptId: a!.id, fence: a!.fence, owner: 'w', outcome: 'blocked', output: null, processingMs: 1 }], ++clock);
      expect(blocked.accepted).toEqual([a!.id]);
      expect(blocked.events.filter((e) => e.type === 'step.queued')).toEqual([]);
      expect(await claim(store)).toEqual([]);
      expect((await store.getRun(runId))?.status).toBe('paused');
      const resumed = await store.controlRun(runId, 'resume', ++clock);
      expect(resumed.events.filter((e) => e.type === 'step.queued').map((e) => e.step)).toEqual(['b']);
      const [b, ...extra] = await claim(store);
      expect([b?.step, extra]).toEqual(['b', []]);
    });

    it('a step that fails and continues settles like a success: its dependents go on', async () => {
      const { store, runId } = await setup({
        name: 'continue',
        max_parallel: 1,
        fail_fast: false,
        steps: { a: step({ on_failure: 'continue', retry: { attempts: 1 } }), b: step({ needs: ['a'] }), c: step() },
      });
      const [a] = await claim(store);
      expect(a?.step).toBe('a');
      const failed = await store.completeAttempts(
        [{ attemptId: a!.id, fence: a!.fence, owner: 'w', outcome: 'failed', error: { code: 'STEP_FAILED', message: 'no' }, retryable: false, processingMs: 1 }],
        ++clock,
      );
      expect(failed.events.filter((e) => e.type === 'step.queued').map((e) => e.step)).toEqual(['b']);
      const [b, ...extra] = await claim(store);
      expect([b?.step, extra]).toEqual(['b', []]);
      expect(await succeed(store, b!)).toEqual(['c']);
      await succeed(store, (await claim(store))[0]!);
      expect((await store.getRun(runId))?.status).toBe('succeeded');
    });
  });
}
