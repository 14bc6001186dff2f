import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import type { Engine } from '../../src/engine/engine.js';
import type { AttemptResult, ClaimedAttempt, ClaimRequest } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { startDrivenRun } from '../support/driven-run.js';

// A completion that also claims (a worker recording a result and asking for its free slots) takes the same attempts
// in the same order whether what it queued went through the queue or, on SQLite, was inserted leased because the
// claim was sure to take it: by priority, then availability, then age, and only the claiming worker's run when it
// claims for one.
for (const backend of backends()) {
  describe(`claims in the transaction of a completion on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    const step = (extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { fn: 'x' }, ...extra });
    const done = (a: ClaimedAttempt): AttemptResult => ({ attemptId: a.id, fence: a.fence, owner: 'w', outcome: 'succeeded', output: a.step, processingMs: 1 });
    let clock = 0;

    /** A chain a -> b (and c, with `fanOut`; priority 0) and a run of one step `u` (priority 5) queued before a's result is recorded. */
    async function chainAndUrgent(fanOut = false): Promise<{ engine: Engine; a: ClaimedAttempt; complete: (claim: Omit<ClaimRequest, 'owner' | 'leaseMs'>) => Promise<ClaimedAttempt[]> }> {
      const steps = { a: step(), b: step({ needs: ['a'] }), ...(fanOut ? { c: step({ needs: ['a'] }) } : {}) };
      const { engine, store } = await startDrivenRun(backend, { name: 'chain', steps }, engines);
      clock = Date.now() + 1000;
      const [a] = (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
      await engine.registerPipeline(normalizePipeline({ name: 'urgent', steps: { u: step({ priority: 5 }) } }, { stepTypes: engine.steps }));
      await engine.startRun('urgent');
      return {
        engine,
        a: a!,
        complete: async (claim) => (await store.completeAttempts([done(a!)], ++clock, { owner: 'w', leaseMs: 60_000, ...claim })).claimed,
      };
    }

    it('a claim with one free slot takes the queued attempt of higher priority, not the step the completion queued', async () => {
      const { complete } = await chainAndUrgent();
      expect((await complete({ limit: 1 })).map((x) => x.step)).toEqual(['u']);
    });

    it('a claim with room for both takes both, in the order they were queued', async () => {
      const { complete } = await chainAndUrgent();
      const claimed = await complete({ limit: 2 });
      expect(claimed.map((x) => x.step)).toEqual(['u', 'b']);
      expect(claimed.map((x) => x.fence)).toEqual([1, 1]);
    });

    it('a claim with room for one more than was queued before takes the best of the rest: the older attempt of higher priority', async () => {
      // a's settle queues b and c; with u queued before, two slots take u and the first of b and c.
      const { complete } = await chainAndUrgent(true);
      expect((await complete({ limit: 2 })).map((x) => x.step)).toEqual(['u', 'b']);
    });

    it("a claim for one run takes only that run's attempt", async () => {
      const { a, complete } = await chainAndUrgent();
      expect((await complete({ limit: 5, only: { runId: a.runId } })).map((x) => x.step)).toEqual(['b']);
    });

    it('an attempt the completion leased runs to its end like any claimed one: its result is accepted once, a stale one refused', async () => {
      const { engine, a, complete } = await chainAndUrgent();
      const [b] = await complete({ limit: 5, only: { runId: a.runId } });
      expect(b?.step).toBe('b');
      const stale = await engine.store.completeAttempts([{ ...done(b!), fence: b!.fence + 1 }], ++clock);
      expect(stale.rejected).toEqual([b!.id]);
      const ok = await engine.store.completeAttempts([done(b!)], ++clock);
      expect(ok.accepted).toEqual([b!.id]);
      expect((await engine.store.getRun(a.runId))?.status).toBe('succeeded');
      const attempts = (await engine.store.listAttempts(a.runId)).map((x) => [x.step, x.number, x.status]);
      expect(attempts).toEqual([['a', 1, 'succeeded'], ['b', 1, 'succeeded']]);
    });
  });
}
