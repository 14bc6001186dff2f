import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { storeArtifacts } from '../../src/artifacts/store-artifacts.js';
import type { PipelineSpec } from '../../src/core/model.js';
import type { RunEvent, Store } from '../../src/store/store.js';
import { SluiceError } from '../../src/core/errors.js';
import { backends } from '../support/backends.js';
import { sleep, testSteps, type TestFn } from '../support/test-steps.js';

for (const backend of backends()) {
  describe(`engine on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    async function setup(spec: PipelineSpec, fns: Record<string, TestFn>, opts: { store?: Store; worker?: boolean } = {}) {
      const store = opts.store ?? (await backend.create());
      const steps = testSteps(fns);
      const engine = new Engine({ store, steps, onError: (e) => console.error(e), artifacts: storeArtifacts(store) ?? mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
      engines.push(engine);
      const events: RunEvent[] = [];
      engine.subscribe((e) => events.push(e));
      const pipeline = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      if (opts.worker !== false) engine.startWorker({ pollMs: 20, reapMs: 50 });
      return { engine, store, pipeline, events };
    }

    const fnStep = (fn: string, extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { fn }, ...extra });

    it('runs a DAG in dependency order and records every transition as an event', async () => {
      const order: string[] = [];
      const rec: TestFn = (ctx) => {
        order.push(ctx.step);
        return { step: ctx.step, seen: Object.keys(ctx.steps).sort() };
      };
      const { engine, store, events } = await setup(
        { name: 'dag', steps: { a: fnStep('rec'), b: fnStep('rec', { needs: ['a'] }), c: fnStep('rec', { needs: ['a'] }), d: fnStep('rec', { needs: ['b', 'c'] }) } },
        { rec },
      );
      const { run } = await engine.startRun('dag', { input: { x: 1 } });
      const done = await engine.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      expect(order[0]).toBe('a');
      expect(order[3]).toBe('d');
      const steps = await store.listSteps(run.id);
      expect(steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      expect(steps.find((s) => s.name === 'd')?.output).toEqual({ step: 'd', seen: ['b', 'c'] });
      const stored = await store.listEvents({ runId: run.id });
      const types = stored.map((e) => `${e.type}${e.step ? `:${e.step}` : ''}`);
      expect(types[0]).toBe('run.queued');
      expect(types).toContain('run.started');
      expect(types.at(-1)).toBe('run.succeeded');
      for (const s of ['a', 'b', 'c', 'd']) {
        expect(types.filter((t) => t === `step.queued:${s}`)).toHaveLength(1);
        expect(types.filter((t) => t === `step.started:${s}`)).toHaveLength(1);
        expect(types.filter((t) => t === `step.succeeded:${s}`)).toHaveLength(1);
      }
      expect(events.map((e) => e.id)).toEqual(expect.arrayContaining(stored.map((e) => e.id)));
    });

    it('never runs more steps of a run at once than max_parallel', async () => {
      let running = 0;
      let peak = 0;
      // Each step holds until two ran at once (a barrier, bounded), then a little more, in which a third
      // would be seen if the engine let one start.
      const work: TestFn = async () => {
        running += 1;
        peak = Math.max(peak, running);
        for (let waited = 0; peak < 2 && waited < 10_000; waited += 10) await sleep(10);
        await sleep(20);
        running -= 1;
      };
      const steps = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [n, fnStep('work')]));
      const { engine } = await setup({ name: 'wide', max_parallel: 2, steps }, { work });
      const { run } = await engine.startRun('wide');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(peak).toBe(2);
    });

    it('fail_fast cancels what has not started and fails the run', async () => {
      const ran: string[] = [];
      const boom: TestFn = () => {
        throw new SluiceError('STEP_FAILED', 'boom', { retryable: false });
      };
      const ok: TestFn = async (ctx) => {
        ran.push(ctx.step);
        await sleep(30);
      };
      const { engine, store } = await setup(
        { name: 'ff', max_parallel: 1, steps: { a: fnStep('boom'), b: fnStep('ok'), c: fnStep('ok', { needs: ['b'] }) } },
        { boom, ok },
      );
      const { run } = await engine.startRun('ff');
      const done = await engine.waitForRun(run.id);
      expect(done.status).toBe('failed');
      expect(ran).toEqual([]);
      const byName = Object.fromEntries((await store.listSteps(run.id)).map((s) => [s.name, s]));
      expect(byName['a']?.status).toBe('failed');
      expect(byName['a']?.error?.message).toBe('boom');
      expect(byName['b']?.status).toBe('cancelled');
      expect(byName['c']?.status).toBe('cancelled');
      expect((await store.listDeadLetters(10)).map((r) => r.id)).toContain(run.id);
    });

    it('without fail_fast independent branches finish and only descendants are cancelled', async () => {
      const boom: TestFn = () => {
        throw new Error('nope');
      };
      const { engine, store } = await setup(
        {
          name: 'noff',
          fail_fast: false,
          defaults: { retry: { attempts: 1 } },
          steps: { a: fnStep('boom'), a2: fnStep('ok', { needs: ['a'] }), b: fnStep('ok'), b2: fnStep('ok', { needs: ['b'] }) },
        },
        { boom, ok: () => 'ok' },
      );
      const { run } = await engine.startRun('noff');
      expect((await engine.waitForRun(run.id)).status).toBe('failed');
      const byName = Object.fromEntries((await store.listSteps(run.id)).map((s) => [s.name, s.status]));
      expect(byName).toEqual({ a: 'failed', a2: 'cancelled', b: 'succeeded', b2: 'succeeded' });
    });

    it("a failed run's error names the failed step and its error, in dead letters and the run.failed event", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const { engine, store, events } = await setup(
        {
          name: 'named-failure',
          fail_fast: false,
          defaults: { retry: { attempts: 1 } },
          // b ends after a failed: the run ends when b settles (the settle path), not when a aborts.
          steps: { a: fnStep('boom'), b: fnStep('slow'), c: fnStep('boom', { on_failure: 'continue' }) },
        },
        {
          boom: (ctx) => {
            if (ctx.step === 'a') release();
            throw new SluiceError('COMMAND_FAILED', `exit code ${ctx.step === 'a' ? 2 : 3}`, { retryable: false });
          },
          slow: async () => {
            await gate;
            await sleep(20);
          },
        },
      );
      const expected = 'step "a" failed: COMMAND_FAILED: exit code 2';
      const { run } = await engine.startRun('named-failure');
      const done = await engine.waitForRun(run.id);
      expect(done.status).toBe('failed');
      expect(done.error).toMatchObject({ code: 'STEP_FAILED', message: expected });
      expect((await store.listDeadLetters(10)).find((r) => r.id === run.id)?.error?.message).toBe(expected);
      const failed = (await store.listEvents({ runId: run.id })).find((e) => e.type === 'run.failed');
      expect(failed?.data).toMatchObject({ error: { message: expected } });
      expect(events.find((e) => e.runId === run.id && e.type === 'run.failed')?.data).toMatchObject({ error: { message: expected } });

      // fail_fast: the run ends as the step aborts it.
      const ff = await setup({ name: 'named-ff', defaults: { retry: { attempts: 1 } }, steps: { x: fnStep('boom'), y: fnStep('slow', { needs: ['x'] }) } }, { boom: () => Promise.reject(new SluiceError('STEP_TIMEOUT', 'took too long', { retryable: false })), slow: () => 1 }, { store });
      const second = await ff.engine.startRun('named-ff');
      expect((await ff.engine.waitForRun(second.run.id)).error?.message).toBe('step "x" failed: STEP_TIMEOUT: took too long');
    });

    it('retries with backoff, then succeeds; each attempt is recorded with its error', async () => {
      let calls = 0;
      const flaky: TestFn = () => {
        calls += 1;
        if (calls < 3) throw new Error(`flake ${calls}`);
        return { calls };
      };
      const { engine, store, events } = await setup(
        { name: 'retry', steps: { a: fnStep('flaky', { retry: { attempts: 3, delay: '10ms', jitter: false } }) } },
        { flaky },
      );
      const { run } = await engine.startRun('retry');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const attempts = await store.listAttempts(run.id, 'a');
      expect(attempts.map((a) => a.status)).toEqual(['failed', 'failed', 'succeeded']);
      expect(attempts[0]?.error?.message).toBe('flake 1');
      expect(attempts[0]?.error?.stack).toContain('flake 1');
      expect(attempts.every((a) => typeof a.processingMs === 'number')).toBe(true);
      const retrying = events.filter((e) => e.type === 'step.retrying');
      expect(retrying.map((e) => e.data?.['delay_ms'])).toEqual([10, 20]);
    });

    it('records model usage on the attempt and waits at least Retry-After before the next try', async () => {
      let calls = 0;
      const llmish: TestFn = (ctx) => {
        calls += 1;
        ctx.reportUsage({ model: 'm1', tokensIn: 10, tokensOut: 4, cost: 0.5 });
        ctx.reportUsage({ tokensIn: 1, tokensOut: 1 });
        if (calls === 1) throw new SluiceError('STEP_FAILED', 'rate limited', { retryable: true, details: { retryAfterMs: 80 } });
        return 'ok';
      };
      const { engine, store, events } = await setup(
        { name: 'usage', steps: { a: fnStep('llmish', { retry: { attempts: 2, delay: '1ms', jitter: false } }) } },
        { llmish },
      );
      const { run } = await engine.startRun('usage');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const attempts = await store.listAttempts(run.id, 'a');
      expect(attempts.map((a) => a.usage)).toEqual([
        { model: 'm1', tokensIn: 11, tokensOut: 5, cost: 0.5 },
        { model: 'm1', tokensIn: 11, tokensOut: 5, cost: 0.5 },
      ]);
      expect(events.find((e) => e.type === 'step.retrying')?.data?.['delay_ms']).toBe(80);
      expect(attempts[1]!.startedAt! - attempts[0]!.finishedAt!).toBeGreaterThanOrEqual(80);
    });

    it('on_failure: continue lets dependents run with a null output', async () => {
      const { engine, store } = await setup(
        {
          name: 'cont',
          steps: { a: fnStep('boom', { on_failure: 'continue' }), b: fnStep('see', { needs: ['a'] }) },
        },
        { boom: () => Promise.reject(new SluiceError('STEP_FAILED', 'x', { retryable: false })), see: (ctx) => ({ a: ctx.steps['a'] }) },
      );
      const { run } = await engine.startRun('cont');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const steps = await store.listSteps(run.id);
      expect(steps.map((s) => s.status)).toEqual(['failed', 'succeeded']);
      expect(steps[1]?.output).toEqual({ a: null });
    });

    it('skips a step whose `if` is false and a disabled step; dependents still run', async () => {
      const ran: string[] = [];
      const rec: TestFn = (ctx) => {
        ran.push(ctx.step);
        return { value: 3 };
      };
      const { engine, store } = await setup(
        {
          name: 'cond',
          steps: {
            a: fnStep('rec'),
            big: fnStep('rec', { needs: ['a'], if: 'steps.a.value > 10' }),
            off: fnStep('rec', { needs: ['a'], disabled: true }),
            end: fnStep('rec', { needs: ['big', 'off'] }),
          },
        },
        { rec },
      );
      const { run } = await engine.startRun('cond');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(ran).toEqual(['a', 'end']);
      expect((await store.listSteps(run.id)).map((s) => s.status)).toEqual(['succeeded', 'skipped', 'skipped', 'succeeded']);
    });

    it('reuses cached outputs on a re-run with the same inputs; force bypasses the cache', async () => {
      let calls = 0;
      const count: TestFn = () => ({ calls: ++calls });
      const { engine, store } = await setup({ name: 'cache', steps: { a: fnStep('count'), b: fnStep('count', { needs: ['a'] }) } }, { count });
      const first = await engine.startRun('cache', { input: { n: 1 } });
      await engine.waitForRun(first.run.id);
      const second = await engine.startRun('cache', { input: { n: 1 } });
      expect((await engine.waitForRun(second.run.id)).status).toBe('succeeded');
      expect(calls).toBe(2);
      expect((await store.listSteps(second.run.id)).map((s) => s.status)).toEqual(['cached', 'cached']);
      const other = await engine.startRun('cache', { input: { n: 2 } });
      await engine.waitForRun(other.run.id);
      expect(calls).toBe(4);
      const forced = await engine.startRun('cache', { input: { n: 1 }, force: true });
      await engine.waitForRun(forced.run.id);
      expect(calls).toBe(6);
      expect(await store.resetPipelineCache('cache')).toBeGreaterThan(0);
    });

    it('runs only the selected steps plus their dependencies', async () => {
      const ran: string[] = [];
      const rec: TestFn = (ctx) => void ran.push(ctx.step);
      const { engine, store } = await setup(
        { name: 'sel', steps: { a: fnStep('rec'), b: fnStep('rec', { needs: ['a'] }), c: fnStep('rec', { needs: ['a'] }), d: fnStep('rec', { needs: ['c'] }) } },
        { rec },
      );
      const { run } = await engine.startRun('sel', { steps: ['b'] });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(ran.sort()).toEqual(['a', 'b']);
      expect((await store.listSteps(run.id)).map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'skipped', 'skipped']);
    });

    it('fails an attempt that exceeds its step timeout and a run that exceeds its own', async () => {
      const hang: TestFn = (ctx) => sleep(10_000, ctx.signal);
      const { engine, store } = await setup({ name: 'slow', steps: { a: fnStep('hang', { timeout: '50ms' }) } }, { hang });
      const { run } = await engine.startRun('slow');
      expect((await engine.waitForRun(run.id)).status).toBe('failed');
      expect((await store.listAttempts(run.id, 'a'))[0]?.error?.code).toBe('STEP_TIMEOUT');

      const second = await setup({ name: 'slowrun', timeout: '100ms', steps: { a: fnStep('hang') } }, { hang });
      const r2 = await second.engine.startRun('slowrun');
      const done = await second.engine.waitForRun(r2.run.id);
      expect(done.status).toBe('failed');
      expect(done.error?.code).toBe('RUN_TIMEOUT');
    });

    it('cancel aborts the running step and the run ends cancelled', async () => {
      let aborted = false;
      let started = false;
      const hang: TestFn = async (ctx) => {
        started = true;
        try {
          await sleep(10_000, ctx.signal);
        } catch (err) {
          aborted = true;
          throw err;
        }
      };
      const { engine, store } = await setup({ name: 'cancel', steps: { a: fnStep('hang'), b: fnStep('hang', { needs: ['a'] }) } }, { hang });
      const { run } = await engine.startRun('cancel');
      await waitFor(() => started);
      await engine.cancel(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('cancelled');
      await waitFor(async () => aborted);
      expect((await store.listSteps(run.id)).map((s) => s.status)).toEqual(['cancelled', 'cancelled']);
      await expect(engine.resume(run.id)).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    });

    it('cancel ends an attempt whose step ignores its signal: the worker slot it held runs the next run', async () => {
      let started = false;
      // Never settles and never reads ctx.signal (so the attempt's AbortSignal is never even made).
      const deaf: TestFn = () => {
        started = true;
        return new Promise(() => {});
      };
      const { engine } = await setup({ name: 'deaf', steps: { a: fnStep('deaf') } }, { deaf, quick: () => 'done' }, { worker: false });
      await engine.registerPipeline(normalizePipeline({ name: 'quick', steps: { a: fnStep('quick') } }, { stepTypes: engine.steps }));
      engine.startWorker({ concurrency: 1, pollMs: 20, reapMs: 50 });
      const { run } = await engine.startRun('deaf');
      await waitFor(() => started);
      await engine.cancel(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('cancelled');
      const next = await engine.startRun('quick');
      expect((await engine.waitForRun(next.run.id)).status).toBe('succeeded');
    });

    it('pause holds new steps until resume', async () => {
      const ran: string[] = [];
      // `a` ends only once the run is paused, so a busy machine cannot finish it (and queue `b`) first.
      let release!: () => void;
      const paused = new Promise<void>((resolve) => (release = resolve));
      const slow: TestFn = async (ctx) => {
        ran.push(ctx.step);
        if (ctx.step === 'a') await paused;
      };
      const { engine, store } = await setup({ name: 'pause', steps: { a: fnStep('slow'), b: fnStep('slow', { needs: ['a'] }) } }, { slow });
      const { run } = await engine.startRun('pause');
      await waitFor(async () => (await store.listSteps(run.id))[0]?.status === 'running');
      await engine.pause(run.id);
      release();
      await waitFor(async () => (await store.listSteps(run.id))[0]?.status === 'succeeded');
      await sleep(100);
      expect(ran).toEqual(['a']);
      expect((await store.getRun(run.id))?.status).toBe('paused');
      await engine.resume(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(ran).toEqual(['a', 'b']);
    });

    it('retry re-runs only the failed and never-started steps', async () => {
      const counts: Record<string, number> = {};
      let failB = true;
      const rec: TestFn = (ctx) => {
        counts[ctx.step] = (counts[ctx.step] ?? 0) + 1;
        if (ctx.step === 'b' && failB) throw new SluiceError('STEP_FAILED', 'b broke', { retryable: false });
        return ctx.step;
      };
      const { engine } = await setup({ name: 'redo', steps: { a: fnStep('rec'), b: fnStep('rec', { needs: ['a'] }), c: fnStep('rec', { needs: ['b'] }) } }, { rec });
      const { run } = await engine.startRun('redo');
      expect((await engine.waitForRun(run.id)).status).toBe('failed');
      failB = false;
      await engine.retry(run.id);
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(counts).toEqual({ a: 1, b: 2, c: 1 });
    });

    it('rollback to a step re-runs it and its descendants, not its ancestors', async () => {
      const counts: Record<string, number> = {};
      const rec: TestFn = (ctx) => {
        counts[ctx.step] = (counts[ctx.step] ?? 0) + 1;
        return counts[ctx.step];
      };
      const { engine, store } = await setup(
        { name: 'rb', steps: { a: fnStep('rec'), b: fnStep('rec', { needs: ['a'] }), c: fnStep('rec', { needs: ['b'] }), x: fnStep('rec', { needs: ['a'] }) } },
        { rec },
      );
      const { run } = await engine.startRun('rb');
      await engine.waitForRun(run.id);
      await engine.rollback(run.id, 'b');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect(counts).toEqual({ a: 1, b: 2, c: 2, x: 1 });
      const events = await store.listEvents({ runId: run.id });
      expect(events.some((e) => e.type === 'checkpoint.created' && e.step === 'b')).toBe(true);
      expect((await store.listSteps(run.id)).find((s) => s.name === 'b')?.output).toBe(2);
      // Each step run again keeps its first attempt in the history: b queued by the rollback, c by b's settle.
      for (const step of ['b', 'c']) expect((await store.listAttempts(run.id, step)).map((a) => [a.number, a.status])).toEqual([[1, 'succeeded'], [2, 'succeeded']]);
      expect((await store.listAttempts(run.id, 'x')).map((a) => a.number)).toEqual([1]);
    });

    it("fences results: a stale worker's late result releases no dependent", async () => {
      const { engine, store } = await setup({ name: 'fence2', steps: { a: fnStep('x'), b: fnStep('x', { needs: ['a'] }) } }, { x: () => 1 }, { worker: false });
      const { run } = await engine.startRun('fence2');
      const now = Date.now();
      const [stale] = (await store.claimAttempts('worker-a', 10, 1000, now)).attempts;
      expect((await store.reap(now + 5000)).expired).toBe(1);
      const [fresh] = (await store.claimAttempts('worker-b', 10, 1000, now + 5000)).attempts;
      const late = await store.completeAttempts([{ attemptId: stale!.id, fence: stale!.fence, owner: 'worker-a', outcome: 'succeeded', output: 'stale', processingMs: 1 }], now + 5001);
      expect(late.rejected).toEqual([stale!.id]);
      // b waits on a until the result that holds the lease is recorded, and then on nothing.
      expect((await store.claimAttempts('worker-c', 10, 1000, now + 5002)).attempts).toEqual([]);
      const ok = await store.completeAttempts([{ attemptId: fresh!.id, fence: fresh!.fence, owner: 'worker-b', outcome: 'succeeded', output: 'fresh', processingMs: 1 }], now + 5003);
      expect(ok.accepted).toEqual([fresh!.id]);
      const next = await store.claimAttempts('worker-c', 10, 1000, now + 5004);
      expect(next.attempts.map((a) => a.step)).toEqual(['b']);
      expect((await store.listSteps(run.id)).map((s) => [s.name, s.status])).toEqual([['a', 'succeeded'], ['b', 'running']]);
    });

    it('fences results: a worker whose lease expired cannot record its late result', async () => {
      const { engine, store } = await setup({ name: 'fence', steps: { a: fnStep('x') } }, { x: () => 1 }, { worker: false });
      const { run } = await engine.startRun('fence');
      const now = Date.now();
      const first = await store.claimAttempts('worker-a', 10, 1000, now);
      expect(first.attempts).toHaveLength(1);
      const stale = first.attempts[0]!;
      const reaped = await store.reap(now + 5000);
      expect(reaped.expired).toBe(1);
      const second = await store.claimAttempts('worker-b', 10, 1000, now + 5000);
      expect(second.attempts).toHaveLength(1);
      const fresh = second.attempts[0]!;
      const late = await store.completeAttempts([{ attemptId: stale.id, fence: stale.fence, owner: 'worker-a', outcome: 'succeeded', output: 'stale', processingMs: 1 }], now + 5001);
      expect(late.rejected).toEqual([stale.id]);
      const ok = await store.completeAttempts([{ attemptId: fresh.id, fence: fresh.fence, owner: 'worker-b', outcome: 'succeeded', output: 'fresh', processingMs: 1 }], now + 5002);
      expect(ok.accepted).toEqual([fresh.id]);
      const again = await store.completeAttempts([{ attemptId: fresh.id, fence: fresh.fence, owner: 'worker-b', outcome: 'succeeded', output: 'twice', processingMs: 1 }], now + 5003);
      expect(again.rejected).toEqual([fresh.id]);
      expect((await store.listSteps(run.id))[0]?.output).toBe('fresh');
      expect((await store.getRun(run.id))?.status).toBe('succeeded');
    });

    it('a claim of many leases each attempt once, oldest first, and starts its run, in attempt id order', async () => {
      const { engine, store } = await setup({ name: 'many', steps: { a: fnStep('x') } }, { x: () => 1 }, { worker: false });
      const runs = (await engine.startRuns('many', Array.from({ length: 12 }, (_, i) => ({ input: { i } })))).map((c) => c.run.id);
      const now = Date.now() + 1000;
      const first = await store.claimAttempts('worker', 10, 1000, now);
      expect(first.attempts.map((a) => a.runId)).toEqual(runs.slice(0, 10));
      expect(first.attempts.map((a) => a.id)).toEqual([...first.attempts.map((a) => a.id)].sort((x, y) => x - y));
      expect(first.events.filter((e) => e.type === 'step.started').map((e) => e.runId)).toEqual(runs.slice(0, 10));
      expect(first.events.filter((e) => e.type === 'run.started').map((e) => e.runId)).toEqual(runs.slice(0, 10));
      const rest = await store.claimAttempts('worker', 10, 1000, now + 1);
      expect(rest.attempts.map((a) => a.runId)).toEqual(runs.slice(10));
      expect((await store.claimAttempts('worker', 10, 1000, now + 2)).attempts).toEqual([]);
      expect((await store.getRun(runs[0]!))?.status).toBe('running');
    });

    it('returns the existing run for a repeated idempotency key', async () => {
      const { engine } = await setup({ name: 'idem', steps: { a: fnStep('x') } }, { x: () => 1 }, { worker: false });
      const first = await engine.startRun('idem', { idempotencyKey: 'k1' });
      const again = await engine.startRun('idem', { idempotencyKey: 'k1' });
      expect(again.created).toBe(false);
      expect(again.run.id).toBe(first.run.id);
    });

    it('refuses a repeated idempotency key with a different request (IDEMPOTENCY_CONFLICT naming the run)', async () => {
      const { engine, store } = await setup({ name: 'idem2', steps: { a: fnStep('x'), b: fnStep('x', { needs: ['a'] }) } }, { x: () => 1 }, { worker: false });
      const request = { idempotencyKey: 'k2', input: { n: 1 }, priority: 3, steps: ['a'] };
      const first = await engine.startRun('idem2', request);
      expect((await engine.startRun('idem2', { ...request, input: { n: 1 } })).run.id).toBe(first.run.id);
      const variants = [{ input: { n: 2 } }, { steps: ['b'] }, { force: true }, { priority: 4 }, { runAt: Date.now() + 60_000 }];
      for (const change of variants) {
        const err = await engine.startRun('idem2', { ...request, ...change }).catch((e: unknown) => e);
        expect(err, JSON.stringify(change)).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { run_id: first.run.id } });
        expect((err as Error).message).toContain(first.run.id);
      }
      // Nothing was created by the refused requests, and the key still answers the same request.
      expect((await store.listRuns({ pipeline: 'idem2' })).map((r) => r.id)).toEqual([first.run.id]);
      const same = await Promise.all([engine.startRun('idem2', request), engine.startRun('idem2', request)]);
      expect(same.map((c) => [c.run.id, c.created])).toEqual([[first.run.id, false], [first.run.id, false]]);
    });

    it('stores a large output as an artifact, passes it by reference and lets dependents read it', async () => {
      const big = 'x'.repeat(300 * 1024);
      const { engine, store } = await setup(
        { name: 'big', steps: { make: fnStep('make'), use: fnStep('use', { needs: ['make'] }) } },
        { make: () => ({ text: big }), use: (ctx) => ({ length: (ctx.steps['make'] as { text: string }).text.length }) },
      );
      const { run } = await engine.startRun('big');
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const [make, use] = await store.listSteps(run.id);
      expect(make?.output).toMatchObject({ $artifact: expect.stringMatching(/^[0-9a-f]{64}$/), content_type: 'application/json' });
      expect((make!.output as { size: number }).size).toBeGreaterThan(300 * 1024);
      expect(use?.output).toEqual({ length: big.length });
      expect(await engine.artifacts.getJson((make!.output as { $artifact: string }).$artifact)).toEqual({ text: big });
    });

    it('refuses a run input above the size limit with a clear error', async () => {
      const { engine, store } = await setup({ name: 'huge', steps: { a: fnStep('x') } }, { x: () => 1 }, { worker: false });
      await expect(engine.startRun('huge', { input: { blob: 'y'.repeat(2 * 1024 * 1024) } })).rejects.toMatchObject({ code: 'INPUT_TOO_LARGE' });
      expect(await store.listRuns({})).toHaveLength(0);
    });

    it('refuses an input that does not match the pipeline input schema, storing nothing', async () => {
      const { engine, store } = await setup(
        { name: 'typed', input: { type: 'object', required: ['source'], properties: { source: { type: 'string' } } }, steps: { a: fnStep('x') } },
        { x: () => 1 },
        { worker: false },
      );
      await expect(engine.startRun('typed', { input: { source: 3 } })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
      expect(await store.listRuns({})).toHaveLength(0);
    });
  });
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
