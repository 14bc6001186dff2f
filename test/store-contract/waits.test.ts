import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { decideAtDeadline } from '../../src/engine/approval-deadlines.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import type { RunEvent, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';

const T0 = Date.parse('2026-03-01T09:00:00Z');

for (const backend of backends()) {
  describe(`durable waits on ${backend.name}`, () => {
    const engines: Engine[] = [];
    const opened: Store[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
      for (const s of opened.splice(0)) await s.close();
    });
    afterAll(() => backend.cleanup());

    const clock = { t: T0, now: () => clock.t };

    const errors: unknown[] = [];

    async function engineOn(store: Store, specs: PipelineSpec[], worker = true) {
      const steps = builtinStepTypes({ functions: { echo: (ctx) => ({ got: ctx.steps }) } });
      const engine = new Engine({ store, steps, clock, onError: (e) => errors.push(e) });
      engines.push(engine);
      const events: RunEvent[] = [];
      engine.subscribe((e) => events.push(e));
      for (const spec of specs) await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      if (worker) engine.startWorker({ pollMs: 10, reapMs: 50 });
      return { engine, events };
    }

    async function until<T>(probe: () => Promise<T | undefined | false>, what: string): Promise<T> {
      for (let i = 0; i < 1000; i++) {
        const v = await probe();
        if (v !== undefined && v !== false) return v;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`timed out waiting for ${what}`);
    }

    const stepStatus = (store: Store, runId: string, step: string) => async () => (await store.listSteps(runId)).find((s) => s.name === step)?.status;
    const waitingStep = (store: Store, runId: string, step: string) => until(async () => (await stepStatus(store, runId, step)()) === 'waiting', `${step} waiting`);

    it('a sleep survives closing and reopening the store, holds no lease meanwhile, and wakes when its time comes', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = { name: 'nap', steps: { nap: { uses: 'sleep', with: { for: '10m' } }, after: { uses: 'function', needs: ['nap'], with: { name: 'echo' } } } };
      const first = await engineOn(store, [spec]);
      const { run } = await first.engine.startRun('nap');
      await waitingStep(store, run.id, 'nap');
      const nap = (await store.listSteps(run.id)).find((s) => s.name === 'nap');
      expect(nap?.output).toMatchObject({ waiting_for: 'time', until: '2026-03-01T09:10:00.000Z' });
      expect(first.events.filter((e) => e.runId === run.id).map((e) => e.type)).toContain('step.waiting');
      // The run stays running; `--status waiting` lists it by its waiting step.
      expect((await store.listRuns({ status: 'waiting' })).map((r) => r.id)).toEqual([run.id]);
      // No attempt is leased while it sleeps: the first finished, the next is queued for 09:10.
      expect((await store.listAttempts(run.id, 'nap')).map((a) => [a.status, a.owner === null])).toEqual([
        ['waiting', false],
        ['queued', true],
      ]);
      await first.engine.close();
      engines.splice(0);
      await store.close();

      // Another process opens the store 9 minutes later: the sleep is not over, nothing runs.
      const again = await backend.reopen(store);
      opened.push(again);
      clock.t = T0 + 9 * 60_000;
      const second = await engineOn(again, [spec]);
      await new Promise((r) => setTimeout(r, 100));
      expect(await stepStatus(again, run.id, 'nap')()).toBe('waiting');
      expect((await again.getRun(run.id))?.status).toBe('running');
      // Past its time, a worker runs it again and the run goes on.
      clock.t = T0 + 10 * 60_000 + 1;
      const done = await second.engine.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      const steps = await again.listSteps(run.id);
      expect(steps.find((s) => s.name === 'nap')?.output).toEqual({ until: '2026-03-01T09:10:00.000Z', woke_at: new Date(T0 + 10 * 60_000 + 1).toISOString() });
      expect(second.events.filter((e) => e.runId === run.id && e.step === 'nap').map((e) => e.type)).toEqual(['step.woken', 'step.started', 'step.succeeded']);
    });

    it('a sleep until a time from an expression; a time already past does not wait', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = { name: 'until', steps: { at: { uses: 'sleep', with: { until: '${{ input.at }}' } } } };
      const { engine } = await engineOn(store, [spec]);
      const past = await engine.startRun('until', { input: { at: '2026-03-01T08:00:00Z' } });
      expect((await engine.waitForRun(past.run.id)).status).toBe('succeeded');
      const later = await engine.startRun('until', { input: { at: T0 + 3_600_000 } });
      await waitingStep(store, later.run.id, 'at');
      clock.t = T0 + 3_600_000;
      expect((await engine.waitForRun(later.run.id)).status).toBe('succeeded');
    });

    it('wait_for_event: an event that arrived within the lookback matches at once; one event satisfies many waits; each wait takes one event', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = {
        name: 'order',
        steps: { paid: { uses: 'wait_for_event', with: { event: 'order.paid', match: 'event.order_id = input.order_id', timeout: '2d' } } },
      };
      const { engine, events } = await engineOn(store, [spec]);
      // Arrived before the wait began, within the default 1 h lookback.
      await engine.emit('order.paid', { order_id: 'A', amount: 1 });
      clock.t = T0 + 60_000;
      const a = await engine.startRun('order', { input: { order_id: 'A' } });
      expect((await engine.waitForRun(a.run.id)).status).toBe('succeeded');
      expect((await store.listSteps(a.run.id))[0]?.output).toEqual({ order_id: 'A', amount: 1 });

      // Three runs wait on B: one event wakes them all; a later B event wakes none of them again.
      const waits: string[] = [];
      for (let i = 0; i < 3; i++) waits.push((await engine.startRun('order', { input: { order_id: 'B' } })).run.id);
      const other = (await engine.startRun('order', { input: { order_id: 'C' } })).run.id;
      for (const id of [...waits, other]) await waitingStep(store, id, 'paid');
      clock.t = T0 + 120_000;
      await engine.emit('order.paid', { order_id: 'B', amount: 2 });
      for (const id of waits) expect((await engine.waitForRun(id)).status).toBe('succeeded');
      await engine.emit('order.paid', { order_id: 'B', amount: 3 });
      for (const id of waits) expect((await store.listSteps(id))[0]?.output).toEqual({ order_id: 'B', amount: 2 });
      expect(events.filter((e) => e.type === 'step.woken' && waits.includes(e.runId))).toHaveLength(3);
      expect(await stepStatus(store, other, 'paid')()).toBe('waiting');
    });

    it('wait_for_event times out: fail by default, continue with null when asked; an event too old for the lookback is not taken', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec = (name: string, onTimeout: 'fail' | 'continue'): PipelineSpec => ({
        name,
        steps: { w: { uses: 'wait_for_event', with: { event: 'ping', timeout: '1h', on_timeout: onTimeout, lookback: '5m' } } },
      });
      const { engine, events } = await engineOn(store, [spec('strict', 'fail'), spec('lenient', 'continue')]);
      await engine.emit('ping', { old: true });
      clock.t = T0 + 10 * 60_000;
      const strict = await engine.startRun('strict');
      const lenient = await engine.startRun('lenient');
      await waitingStep(store, strict.run.id, 'w');
      await waitingStep(store, lenient.run.id, 'w');
      clock.t = T0 + 71 * 60_000;
      const failed = await engine.waitForRun(strict.run.id);
      expect(failed.status).toBe('failed');
      expect((await store.listSteps(strict.run.id))[0]?.error).toMatchObject({ code: 'WAIT_TIMEOUT' });
      const continued = await engine.waitForRun(lenient.run.id);
      expect(continued.status).toBe('succeeded');
      expect((await store.listSteps(lenient.run.id))[0]?.output).toBeNull();
      expect(events.filter((e) => e.type === 'step.timed_out')).toHaveLength(2);
    });

    it('a match that fails on an event leaves the wait waiting; the next matching event wakes it', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = { name: 'picky', steps: { w: { uses: 'wait_for_event', with: { event: 'e', match: '$number(event.n) > 1' } } } };
      const { engine } = await engineOn(store, [spec]);
      const { run } = await engine.startRun('picky');
      await waitingStep(store, run.id, 'w');
      errors.length = 0;
      await engine.emit('e', { n: 'not a number' });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'EXPRESSION_FAILED', message: expect.stringContaining(`wait_for_event w of run ${run.id}: with.match failed on event e`) });
      await engine.emit('e', { n: 1 });
      await new Promise((r) => setTimeout(r, 50));
      expect(await stepStatus(store, run.id, 'w')()).toBe('waiting');
      await engine.emit('e', { n: 2 });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect((await store.listSteps(run.id))[0]?.output).toEqual({ n: 2 });
    });

    it('an approval past its deadline is decided as on_timeout says (reject by default), recorded as by deadline', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec = (name: string, extra: Record<string, unknown>): PipelineSpec => ({ name, steps: { ok: { uses: 'approval', with: { message: 'ship?', timeout: '1h', ...extra } } } });
      const { engine, events } = await engineOn(store, [spec('strict', {}), spec('lenient', { on_timeout: 'approve' })]);
      const strict = await engine.startRun('strict');
      const lenient = await engine.startRun('lenient');
      for (const id of [strict.run.id, lenient.run.id]) expect((await engine.waitForRun(id, { untilSettled: true })).status).toBe('waiting');
      expect((await store.listSteps(strict.run.id))[0]?.output).toMatchObject({ deadline: '2026-03-01T10:00:00.000Z', on_timeout: 'reject' });
      await new Promise((r) => setTimeout(r, 50));
      expect((await store.getRun(strict.run.id))?.status).toBe('waiting');
      clock.t = T0 + 3_600_000;
      expect((await engine.waitForRun(strict.run.id)).status).toBe('failed');
      expect((await store.listSteps(strict.run.id))[0]?.error).toMatchObject({ code: 'REJECTED' });
      expect((await engine.waitForRun(lenient.run.id)).status).toBe('succeeded');
      expect(await store.listDecisions(lenient.run.id)).toMatchObject([{ kind: 'human', decision: 'approve', by: 'deadline' }]);
      expect(events.filter((e) => e.type === 'step.timed_out').map((e) => e.runId).sort()).toEqual([strict.run.id, lenient.run.id].sort());
    });

    it('a person who decides between the deadline check\'s read and its decision wins: the check writes nothing, no step.timed_out', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = { name: 'close', steps: { ok: { uses: 'approval', with: { message: 'ship?', timeout: '1h' } } } };
      const { engine } = await engineOn(store, [spec]);
      const { run } = await engine.startRun('close');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      // The check read the approval as due (the engine's own check does not, its clock is before the deadline) ...
      const late = T0 + 3_600_000;
      const [due] = await store.waits.dueApprovals(late, 10);
      expect(due).toMatchObject({ runId: run.id, step: 'ok', decision: 'reject' });
      // ... a person approves, then the check decides.
      await engine.decide(run.id, 'ok', { decision: 'approve', by: 'ann' });
      await expect(decideAtDeadline({ waits: store.waits, now: () => late }, due!)).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const types = (await store.listEvents({ runId: run.id })).map((e) => e.type);
      expect(types).not.toContain('step.timed_out');
      expect(await store.listDecisions(run.id)).toMatchObject([{ decision: 'approve', by: 'ann' }]);
    });

    it('a prune forgets received events older than a week', async () => {
      clock.t = T0;
      const store = await backend.create();
      const { engine } = await engineOn(store, [], false);
      await engine.emit('old', { n: 1 });
      clock.t = T0 + 6 * 86_400_000;
      await engine.emit('recent', { n: 2 });
      clock.t = T0 + 8 * 86_400_000;
      const report = await engine.prune();
      expect(report.rows['events_received']).toBe(1);
      const waits = (store as unknown as { waits: { eventsSince(n: string, s: number, l: number): Promise<unknown[]> } }).waits;
      expect(await waits.eventsSince('old', 0, 10)).toEqual([]);
      expect(await waits.eventsSince('recent', 0, 10)).toHaveLength(1);
    });

    it('events emitted at once from two stores race for one wait: it takes exactly one', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = { name: 'race', steps: { w: { uses: 'wait_for_event', with: { event: 'go', match: 'event.n >= 0' } } } };
      const { engine, events } = await engineOn(store, [spec]);
      const { run } = await engine.startRun('race');
      await waitingStep(store, run.id, 'w');
      const otherStore = await backend.reopen(store);
      opened.push(otherStore);
      const other = await engineOn(otherStore, [], false);
      await Promise.all(Array.from({ length: 10 }, (_, n) => (n % 2 === 0 ? engine : other.engine).emit('go', { n })));
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const output = (await store.listSteps(run.id))[0]?.output as { n: number };
      const woken = [...events, ...other.events].filter((e) => e.type === 'step.woken' && e.runId === run.id);
      expect(woken).toHaveLength(1);
      expect(woken[0]?.data).toMatchObject({ event_id: expect.any(Number) });
      expect(output.n).toBeGreaterThanOrEqual(0);
    });

    it('a gate that blocks gets the same deadline: on_timeout approve lets the run go on', async () => {
      clock.t = T0;
      const store = await backend.create();
      const spec: PipelineSpec = {
        name: 'gated',
        steps: {
          a: { uses: 'function', with: { name: 'echo' } },
          check: { uses: 'gate', needs: ['a'], with: { rules: [{ name: 'never', expr: 'false', severity: 'critical' }], timeout: '30m', on_timeout: 'approve' } },
        },
      };
      const { engine } = await engineOn(store, [spec]);
      const { run } = await engine.startRun('gated');
      expect((await engine.waitForRun(run.id, { untilSettled: true })).status).toBe('waiting');
      expect((await store.listSteps(run.id))[1]).toMatchObject({ status: 'blocked', output: { deadline: '2026-03-01T09:30:00.000Z', on_timeout: 'approve' } });
      clock.t = T0 + 30 * 60_000;
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect((await store.listDecisions(run.id)).filter((d) => d.kind === 'human')).toMatchObject([{ decision: 'approve', by: 'deadline' }]);
    });
  });
}
