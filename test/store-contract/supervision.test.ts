import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import type { StepFunction } from '../../src/steps/builtin.js';
import type { RunEvent, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`gates and approvals on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function setup(spec: PipelineSpec, functions: Record<string, StepFunction>, store?: Store) {
      const steps = builtinStepTypes({ functions });
      const engine = new Engine({ store: store ?? (await backend.create()), steps, onError: (e) => console.error(e) });
      engines.push(engine);
      const events: RunEvent[] = [];
      engine.subscribe((e) => events.push(e));
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      return { engine, store: engine.store, events };
    }

    const fn = (name: string, extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { name }, ...extra });

    it('an approval step blocks the run until a human approves; the run then goes on', async () => {
      const ran: string[] = [];
      const rec: StepFunction = (ctx) => {
        ran.push(ctx.step);
        return ctx.step;
      };
      const { engine, store, events } = await setup(
        { name: 'appr', steps: { a: fn('rec'), ok: { uses: 'approval', needs: ['a'], with: { message: 'ship it?' } }, b: fn('rec', { needs: ['ok'] }) } },
        { rec },
      );
      const { run } = await engine.startRun('appr');
      const waiting = await engine.waitForRun(run.id, { untilSettled: true });
      expect(waiting.status).toBe('waiting');
      expect((await store.listSteps(run.id)).map((s) => s.status)).toEqual(['succeeded', 'blocked', 'pending']);
      await expect(engine.decide(run.id, 'a', { decision: 'approve' })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
      await engine.decide(run.id, 'ok', { decision: 'approve', comment: 'looks good', by: 'ana' });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(ran).toEqual(['a', 'b']);
      const ok = (await store.listSteps(run.id)).find((s) => s.name === 'ok');
      expect(ok?.output).toMatchObject({ approved: true, decision: 'approve', comment: 'looks good', by: 'ana', message: 'ship it?' });
      const types = events.filter((e) => e.runId === run.id).map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['step.blocked', 'run.waiting', 'run.resumed', 'run.succeeded']));
    });

    it('a rejected approval fails the run; the decision survives a new engine on the same store', async () => {
      const first = await setup({ name: 'rej', steps: { ok: { uses: 'approval' }, b: fn('rec', { needs: ['ok'] }) } }, { rec: () => 1 });
      const { run } = await first.engine.startRun('rej');
      expect((await first.engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      await first.engine.stopWorker();
      // A new engine (as after a restart) sees the waiting run and records the decision.
      const second = new Engine({ store: first.store, steps: builtinStepTypes({ functions: { rec: () => 1 } }) });
      second.startWorker({ pollMs: 20 });
      await second.decide(run.id, 'ok', { decision: 'reject', comment: 'no' });
      const done = await second.waitForRun(run.id);
      await second.stopWorker();
      expect(done.status).toBe('failed');
      const steps = await first.store.listSteps(run.id);
      expect(steps.map((s) => s.status)).toEqual(['failed', 'cancelled']);
      expect(steps[0]?.error).toMatchObject({ code: 'REJECTED', message: 'rejected: no' });
    });

    it('a gate retries the upstream step with the failures as feedback, then proceeds; every decision is audited', async () => {
      const seen: unknown[] = [];
      const analyse: StepFunction = (ctx) => {
        seen.push(ctx.feedback ?? null);
        return { rooms: ctx.feedback ? 3 : 1 };
      };
      const { engine, store, events } = await setup(
        {
          name: 'gated',
          steps: {
            analyse: fn('analyse'),
            check: {
              uses: 'gate',
              needs: ['analyse'],
              with: {
                schema: { type: 'object', required: ['rooms'] },
                rules: [{ name: 'min-rooms', expr: 'steps.analyse.rooms >= 2', severity: 'high' }],
                on_fail: { retry: 'analyse', budget: 2 },
              },
            },
            publish: fn('publish', { needs: ['check'] }),
          },
        },
        { analyse, publish: () => 'published' },
      );
      const { run } = await engine.startRun('gated');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('succeeded');
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBeNull();
      expect(seen[1]).toMatchObject({ gate: 'check', failures: [{ name: 'min-rooms', severity: 'high' }] });
      const decisions = await store.listDecisions(run.id);
      expect(decisions.map((d) => [d.decision, d.budgetLeft])).toEqual([
        ['retry', 1],
        ['proceed', null],
      ]);
      expect(decisions[0]).toMatchObject({ step: 'check', retryStep: 'analyse', rules: [{ name: 'min-rooms' }] });
      expect(events.filter((e) => e.type === 'gate.decided' && e.runId === run.id)).toHaveLength(2);
    });

    it('a gate whose retry budget is spent blocks; approving lets the run finish', async () => {
      let calls = 0;
      const { engine, store } = await setup(
        {
          name: 'budget',
          steps: {
            analyse: fn('analyse'),
            check: {
              uses: 'gate',
              needs: ['analyse'],
              with: { rules: [{ name: 'never', expr: 'false', severity: 'high' }], on_fail: { retry: 'analyse', budget: 1, then: 'block' } },
            },
          },
        },
        { analyse: () => ({ n: ++calls }) },
      );
      const { run } = await engine.startRun('budget');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      expect(calls).toBe(2);
      expect((await store.listDecisions(run.id)).map((d) => d.decision)).toEqual(['retry', 'block']);
      await engine.decide(run.id, 'check', { decision: 'approve', comment: 'accept as is' });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
    });

    it('the audit holds every rule checked and the human decision; an approved gate keeps its report', async () => {
      const { engine, store } = await setup(
        {
          name: 'audited',
          steps: {
            a: fn('a'),
            check: {
              uses: 'gate',
              needs: ['a'],
              with: {
                rules: [
                  { name: 'has-title', expr: '$exists(steps.a.title)', severity: 'high' },
                  { name: 'safe', expr: 'steps.a.safe', severity: 'critical', message: 'not safe' },
                  { name: 'short', expr: '$length(steps.a.title) < 100', severity: 'low' },
                ],
              },
            },
          },
        },
        { a: () => ({ title: 'x', safe: false }) },
      );
      const { run } = await engine.startRun('audited');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      await engine.decide(run.id, 'check', { decision: 'approve', comment: 'checked by hand', by: 'ana' });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const decisions = await store.listDecisions(run.id);
      expect(decisions).toHaveLength(2);
      expect(decisions[0]).toMatchObject({ kind: 'gate', decision: 'block', reason: '1 critical failure(s)' });
      expect(decisions[0]!.rules).toEqual([
        { name: 'has-title', passed: true, severity: 'high' },
        { name: 'safe', passed: false, severity: 'critical', message: 'not safe' },
        { name: 'short', passed: true, severity: 'low' },
      ]);
      expect(decisions[1]).toMatchObject({ kind: 'human', step: 'check', decision: 'approve', comment: 'checked by hand', by: 'ana' });
      expect(decisions[1]!.at).toBeGreaterThanOrEqual(decisions[0]!.at);
      const output = (await store.listSteps(run.id)).find((s) => s.name === 'check')?.output as Record<string, unknown>;
      // The gate's report (why it blocked) stays; the person's decision is added beside it.
      expect(output).toMatchObject({
        decision: { decision: 'block', reason: '1 critical failure(s)' },
        failures: [{ name: 'safe', severity: 'critical' }],
        approved: true,
        human: { decision: 'approve', comment: 'checked by hand', by: 'ana', at: decisions[1]!.at },
      });
    });

    it('a proceed records the rules that passed; a rejection is audited with its comment', async () => {
      const { engine, store } = await setup(
        {
          name: 'proceeds',
          steps: {
            a: fn('a'),
            check: { uses: 'gate', needs: ['a'], with: { rules: [{ name: 'positive', expr: 'steps.a.n > 0' }] } },
            ok: { uses: 'approval', needs: ['check'] },
          },
        },
        { a: () => ({ n: 1 }) },
      );
      const { run } = await engine.startRun('proceeds');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      await engine.decide(run.id, 'ok', { decision: 'reject', comment: 'not today', by: 'token ci' });
      expect((await engine.waitForRun(run.id)).status).toBe('failed');
      const decisions = await store.listDecisions(run.id);
      expect(decisions.map((d) => [d.step, d.kind, d.decision])).toEqual([
        ['check', 'gate', 'proceed'],
        ['ok', 'human', 'reject'],
      ]);
      expect(decisions[0]!.rules).toEqual([{ name: 'positive', passed: true, severity: 'high' }]);
      expect(decisions[1]).toMatchObject({ comment: 'not today', by: 'token ci' });
    });

    it('a critical failure blocks at once', async () => {
      const { engine, store } = await setup(
        {
          name: 'critical',
          steps: {
            a: fn('a'),
            check: { uses: 'gate', needs: ['a'], with: { rules: [{ name: 'safe', expr: 'steps.a.safe', severity: 'critical' }], on_fail: { retry: 'a' } } },
          },
        },
        { a: () => ({ safe: false }) },
      );
      const { run } = await engine.startRun('critical');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      const [decision] = await store.listDecisions(run.id);
      expect(decision).toMatchObject({ decision: 'block', reason: '1 critical failure(s)' });
    });
  });
}
