/**
 * Supervised steps (block for a human, rewind to an upstream step) and the server features of the store
 * (tokens, trigger slots, stats), on every backend.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { PipelineSpec } from '../../src/core/model.js';
import { StepDirective } from '../../src/steps/step-type.js';
import { backends } from '../support/backends.js';
import { testSteps, type TestFn } from '../support/test-steps.js';

for (const backend of backends()) {
  describe(`supervision and server features on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function setup(spec: PipelineSpec, fns: Record<string, TestFn>) {
      const store = await backend.create();
      const steps = testSteps(fns);
      const engine = new Engine({ store, steps, onError: (e) => console.error(e) });
      engines.push(engine);
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      return { engine, store };
    }

    const fnStep = (fn: string, needs: string[] = []) => ({ uses: 'function', needs, with: { fn } });
    const decision = (d: 'proceed' | 'retry' | 'block') => ({ decision: d, validations: [], rules: [{ name: 'r', passed: d === 'proceed' }] });

    it('a blocked step makes the run wait; approval lets it finish and the decision is audited', async () => {
      const { engine, store } = await setup(
        { name: 'approve', steps: { a: fnStep('ok'), gate: fnStep('hold', ['a']), b: fnStep('ok', ['gate']) } },
        { ok: () => 'ok', hold: () => StepDirective.block({ decision: decision('block') }) },
      );
      const { run } = await engine.startRun('approve');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      expect((await store.listSteps(run.id)).map((s) => s.status)).toEqual(['succeeded', 'blocked', 'pending']);
      await engine.decide(run.id, 'gate', { decision: 'approve', comment: 'fine', by: 'tester' });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const decisions = await store.listDecisions(run.id);
      expect(decisions.map((d) => [d.step, d.kind, d.decision])).toEqual([
        ['gate', 'gate', 'block'],
        ['gate', 'human', 'approve'],
      ]);
      expect(decisions[1]).toMatchObject({ comment: 'fine', by: 'tester', attempt: 1 });
      await expect(engine.decide(run.id, 'gate', { decision: 'reject' })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    });

    it('a gate rewinds an upstream step with feedback within its budget, then fails', async () => {
      const seen: unknown[] = [];
      const { engine, store } = await setup(
        { name: 'rewind', steps: { draft: fnStep('draft'), check: fnStep('check', ['draft']) } },
        {
          draft: (ctx) => {
            seen.push((ctx as { feedback?: unknown }).feedback ?? null);
            return seen.length;
          },
          check: () => StepDirective.rewind({ to: 'draft', feedback: { try: seen.length }, budget: 2, then: 'fail' }, { decision: decision('retry') }),
        },
      );
      const { run } = await engine.startRun('rewind');
      const done = await engine.waitForRun(run.id);
      expect(done.status).toBe('failed');
      expect(seen).toEqual([null, { try: 1 }, { try: 2 }]);
      const decisions = await store.listDecisions(run.id);
      expect(decisions.map((d) => [d.decision, d.budgetLeft])).toEqual([
        ['retry', 1],
        ['retry', 0],
        ['block', 0],
      ]);
      expect((await store.listSteps(run.id)).find((s) => s.name === 'check')?.error?.code).toBe('GATE_FAILED');
    });

    it('stores tokens by hash, gives each cron slot to one caller, and reports stats', async () => {
      const { engine, store } = await setup({ name: 'ops', steps: { a: fnStep('ok') } }, { ok: () => 'ok' });
      const ops = store;
      expect(await ops.countTokens()).toBe(0);
      const token = await ops.createToken({ hash: 'h1', role: 'admin', name: 'ci', expiresAt: null }, 1000);
      expect(await ops.findToken('h1')).toEqual(token);
      const expiring = await ops.createToken({ hash: 'h2', role: 'viewer', name: null, expiresAt: 5000 }, 1000);
      expect(await ops.findToken('h2')).toEqual(expiring);
      expect(await ops.findToken('nope')).toBeUndefined();
      expect(await ops.countTokens()).toBe(2);
      const claims = await Promise.all(Array.from({ length: 5 }, () => ops.claimTriggerSlot('ops', 60_000, 2000)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      const { run } = await engine.startRun('ops');
      await engine.waitForRun(run.id);
      expect(await ops.queueDepth()).toBe(0);
      const events = await store.listEvents({});
      expect(await ops.latestEventId()).toBe(events.at(-1)?.id);
      const stats = await ops.pipelineStats('ops', 0);
      expect(stats.runs.byStatus).toEqual({ succeeded: 1 });
      expect(stats.steps.map((s) => [s.name, s.byStatus, s.attempts])).toEqual([['a', { succeeded: 1 }, 1]]);
    });
  });
}
