import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { errorCodeOf } from '../../src/core/errors.js';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { openStore } from '../../src/store/open-store.js';
import type { CreatedRun, Store } from '../../src/store/store.js';
import { storeTargets } from '../support/store-targets.js';
import { testSteps } from '../support/test-steps.js';

/**
 * Flow control of run starts on every backend: bursts of 100 starts give exactly the runs each rule allows, with
 * the start times it gives them; time moves by the injected clock, never by sleeping. No worker runs, so runs stay
 * queued and every start time is the one the rule decided.
 */

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

const pipeline = (rules: Partial<PipelineSpec>): PipelineSpec => ({
  name: 'flowing',
  steps: { only: { uses: 'function', with: { fn: 'quick' } } },
  ...rules,
});

for (const target of storeTargets()) {
  describe(`flow control on ${target.name}`, () => {
    const dirs: string[] = [];
    const stores: Store[] = [];
    const clock = { t: T0, now: () => clock.t };
    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
      clock.t = T0;
    });
    afterAll(() => target.cleanup());

    /** `count` engines, each on its own store (its own connections) of one fresh database, the pipeline registered. */
    async function engines(rules: Partial<PipelineSpec>, count = 1): Promise<Engine[]> {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-flow-'));
      dirs.push(dir);
      const url = await target.url(dir);
      const steps = testSteps({ quick: () => 'ok' });
      const out: Engine[] = [];
      for (let i = 0; i < count; i++) {
        const store = await openStore(url);
        await store.migrate();
        stores.push(store);
        out.push(new Engine({ store, steps, clock, artifactsDir: join(dir, 'artifacts') }));
      }
      await out[0]!.registerPipeline(normalizePipeline(pipeline(rules), { stepTypes: steps }));
      return out;
    }

    /** Starts `n` runs one after the other; refused starts are returned as their error code. */
    async function burst(engine: Engine, n: number, input: (i: number) => unknown = (i) => ({ i })): Promise<Array<CreatedRun | string>> {
      const out: Array<CreatedRun | string> = [];
      for (let i = 0; i < n; i++) out.push(await engine.startRun('flowing', { input: input(i) }).catch((err: unknown) => errorCodeOf(err) ?? String(err)));
      return out;
    }
    const created = (xs: Array<CreatedRun | string>) => xs.filter((x): x is CreatedRun => typeof x !== 'string' && x.created);

    it('rate_limit refuse: a burst of 100 gives exactly the limit, the rest RATE_LIMITED until the window ends', async () => {
      const [engine] = await engines({ rate_limit: { limit: 10, period: '1m' } });
      const first = await burst(engine!, 100);
      expect(created(first)).toHaveLength(10);
      expect(first.filter((x) => x === 'RATE_LIMITED')).toHaveLength(90);
      const refused = await engine!.startRun('flowing', { input: {} }).catch((e: unknown) => e as { details: { retry_after_ms: number } });
      expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { retry_after_ms: MINUTE } });
      clock.t += 59_000;
      expect(created(await burst(engine!, 5))).toHaveLength(0);
      clock.t += 1_000;
      expect(created(await burst(engine!, 100))).toHaveLength(10);
    });

    it('a repeated request with its idempotency key answers its run and is not counted nor refused by rate_limit', async () => {
      const [engine] = await engines({ rate_limit: { limit: 2, period: '1m' } });
      const first = await engine!.startRun('flowing', { input: { n: 1 }, idempotencyKey: 'order-1' });
      for (let i = 0; i < 5; i++) {
        const again = await engine!.startRun('flowing', { input: { n: 1 }, idempotencyKey: 'order-1' });
        expect(again).toMatchObject({ created: false, run: { id: first.run.id } });
      }
      expect(created(await burst(engine!, 3))).toHaveLength(1);
    });

    it('rate_limit queue: nothing is refused; each window of 1m gets exactly 10 start times', async () => {
      const [engine] = await engines({ rate_limit: { limit: 10, period: '1m', mode: 'queue' } });
      const runs = created(await burst(engine!, 100));
      expect(runs).toHaveLength(100);
      const perWindow = new Map<number, number>();
      for (const r of runs) perWindow.set(r.run.runAt, (perWindow.get(r.run.runAt) ?? 0) + 1);
      expect([...perWindow.entries()].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 10 }, (_, k) => [T0 + k * MINUTE, 10]));
      expect(runs[10]!.flow).toMatchObject({ delayedBy: 'rate_limit' });
      expect((await engine!.getRun(runs[99]!.run.id))!).toMatchObject({ status: 'queued', runAt: T0 + 9 * MINUTE });
    });

    it('rate_limit per rendered key: each customer has its own bucket', async () => {
      const [engine] = await engines({ rate_limit: { limit: 3, period: '1m', key: '${{ input.customer }}' } });
      const results = await burst(engine!, 100, (i) => ({ customer: `c${i % 4}` }));
      const byCustomer = new Map<string, number>();
      for (const r of created(results)) {
        const c = (r.run.input as { customer: string }).customer;
        byCustomer.set(c, (byCustomer.get(c) ?? 0) + 1);
      }
      expect(Object.fromEntries(byCustomer)).toEqual({ c0: 3, c1: 3, c2: 3, c3: 3 });
    });

    it('throttle: 100 starts are all kept and spaced evenly, period / limit apart', async () => {
      const [engine] = await engines({ throttle: { limit: 10, period: '1m' } });
      const runs = created(await burst(engine!, 100));
      expect(runs.map((r) => r.run.runAt)).toEqual(Array.from({ length: 100 }, (_, i) => T0 + i * 6_000));
      clock.t = T0 + 100 * 6_000 + 1;
      const later = created(await burst(engine!, 1));
      expect(later[0]!.run.runAt).toBe(clock.t);
    });

    it('debounce: a burst becomes one run with the last input, starting period after the last request', async () => {
      const [engine] = await engines({ debounce: { period: '30s', max_wait: '5m' } });
      const results: Array<CreatedRun | string> = [];
      for (let i = 0; i < 100; i++) {
        results.push(...(await burst(engine!, 1, () => ({ i }))));
        clock.t += 1_000;
      }
      const runs = results as CreatedRun[];
      expect(runs.filter((r) => r.created)).toHaveLength(1);
      const id = runs[0]!.run.id;
      expect(runs.every((r) => r.run.id === id)).toBe(true);
      expect(runs[99]!.flow).toMatchObject({ delayedBy: 'debounce', absorbed: 100 });
      const run = (await engine!.getRun(id))!;
      expect(run.input).toEqual({ i: 99 });
      expect(run.runAt).toBe(T0 + 99_000 + 30_000);
      expect(await (engine!.store as unknown as { runFlow(id: string): Promise<unknown> }).runFlow(id)).toEqual({ absorbed: 100, afterRunId: null });
    });

    it('debounce: a steady stream starts the run at max_wait after the first request', async () => {
      const [engine] = await engines({ debounce: { period: '30s', max_wait: '1m' } });
      const results: CreatedRun[] = [];
      for (let i = 0; i < 100; i++) {
        results.push((await burst(engine!, 1))[0] as CreatedRun);
        clock.t += 10_000;
      }
      // No worker runs, so the run never starts and keeps absorbing, but its start time stays at max_wait.
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect((await engine!.getRun(results[0]!.run.id))!.runAt).toBe(T0 + MINUTE);
    });

    it('debounce merge: concurrent starts from two stores merge every input into the one run, none lost', async () => {
      const [one, two] = await engines({ debounce: { period: '1m', merge: '${{ $append(previous, [input]) }}' } }, 2);
      const [a, b] = await Promise.all([burst(one!, 10, (i) => ({ from: 'one', i })), burst(two!, 10, (i) => ({ from: 'two', i }))]);
      expect([...a, ...b].filter((x) => typeof x === 'string')).toEqual([]);
      const runs = [...a, ...b] as CreatedRun[];
      expect(runs.filter((r) => r.created)).toHaveLength(1);
      const run = (await one!.getRun(runs[0]!.run.id))!;
      const items = run.input as Array<{ from: string; i: number }>;
      expect(items).toHaveLength(20);
      expect(items.filter((x) => x.from === 'one').map((x) => x.i)).toEqual([...Array(10).keys()]);
      expect(items.filter((x) => x.from === 'two').map((x) => x.i)).toEqual([...Array(10).keys()]);
    });

    it('singleton skip: 100 starts give one run; the others answer it, flagged skipped; once it ends a start creates a new one', async () => {
      const [engine] = await engines({ singleton: { mode: 'skip', key: '${{ input.customer }}' } });
      const results = (await burst(engine!, 100, () => ({ customer: 'acme' }))) as CreatedRun[];
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const id = results[0]!.run.id;
      expect(results.slice(1).every((r) => r.run.id === id && r.flow?.skipped === true && !r.created)).toBe(true);
      const other = (await burst(engine!, 1, () => ({ customer: 'globex' })))[0] as CreatedRun;
      expect(other.created).toBe(true);
      await engine!.cancel(id);
      const next = (await burst(engine!, 1, () => ({ customer: 'acme' })))[0] as CreatedRun;
      expect(next.created).toBe(true);
      expect(next.run.id).not.toBe(id);
    });

    it('singleton cancel_running: the new start cancels the active run', async () => {
      const [engine] = await engines({ singleton: { mode: 'cancel_running' } });
      const [a, b] = (await burst(engine!, 2)) as CreatedRun[];
      expect((await engine!.getRun(a!.run.id))!.status).toBe('cancelled');
      expect((await engine!.getRun(b!.run.id))!.status).toBe('queued');
    });

    it('singleton queue: a start waits behind the active run and is released when it ends', async () => {
      const [engine] = await engines({ singleton: { mode: 'queue' } });
      const [a, b, c] = (await burst(engine!, 3)) as CreatedRun[];
      expect(b!.flow).toMatchObject({ after: a!.run.id, delayedBy: 'singleton' });
      expect(c!.flow).toMatchObject({ after: b!.run.id });
      const held = (await engine!.getRun(b!.run.id))!;
      expect(held.status).toBe('queued');
      expect(held.runAt).toBeGreaterThan(T0 + 365 * 24 * 3_600_000);
      clock.t += 5_000;
      // Cancelling the active run releases the next one (the engine hears the run end); wait for that release.
      await engine!.cancel(a!.run.id);
      await engine!.heldRuns.settled();
      expect((await engine!.getRun(b!.run.id))!.runAt).toBe(T0 + 5_000);
      expect((await engine!.getRun(c!.run.id))!.runAt).toBeGreaterThan(T0 + 365 * 24 * 3_600_000);
    });

    it('two stores on one database share one limit, also when their starts interleave', async () => {
      const [one, two] = await engines({ rate_limit: { limit: 10, period: '1m' } }, 2);
      const [a, b] = await Promise.all([burst(one!, 50), burst(two!, 50)]);
      expect(created(a).length + created(b).length).toBe(10);
      expect([...a, ...b].filter((x) => x === 'RATE_LIMITED')).toHaveLength(90);
    });

    it('batches of starts over many keys from two stores, in opposite orders, neither deadlock nor exceed a key', async () => {
      const [one, two] = await engines({ throttle: { limit: 60, period: '1m', key: '${{ input.customer }}' } }, 2);
      const customers = Array.from({ length: 6 }, (_, i) => `c${i}`);
      const batch = (order: string[]) => order.map((customer) => ({ input: { customer } }));
      const rounds = await Promise.all([
        ...Array.from({ length: 4 }, () => one!.startRuns('flowing', batch(customers))),
        ...Array.from({ length: 4 }, () => two!.startRuns('flowing', batch([...customers].reverse()))),
      ]);
      const slots = new Map<string, number[]>();
      for (const r of rounds.flat()) {
        const c = (r.run.input as { customer: string }).customer;
        slots.set(c, [...(slots.get(c) ?? []), r.run.runAt]);
      }
      for (const c of customers) expect(slots.get(c)!.sort((x, y) => x - y)).toEqual(Array.from({ length: 8 }, (_, i) => T0 + i * 1_000));
    });

    it('two stores with throttle hand out distinct slots', async () => {
      const [one, two] = await engines({ throttle: { limit: 60, period: '1m' } }, 2);
      const [a, b] = await Promise.all([burst(one!, 20), burst(two!, 20)]);
      const slots = [...created(a), ...created(b)].map((r) => r.run.runAt).sort((x, y) => x - y);
      expect(slots).toEqual(Array.from({ length: 40 }, (_, i) => T0 + i * 1_000));
    });

    it('a key that fails to render is an EXPRESSION_FAILED naming the rule key, and stores nothing', async () => {
      const [engine] = await engines({ rate_limit: { limit: 1, period: '1m', key: '${{ $number(input.customer) }}' } });
      const err = await engine!.startRun('flowing', { input: { customer: 'not a number' } }).catch((e: unknown) => e as Error & { code: string });
      expect(err).toMatchObject({ code: 'EXPRESSION_FAILED' });
      expect((err as Error).message).toContain('rate_limit.key of pipeline flowing');
      expect(created(await burst(engine!, 1, () => ({ customer: '12' })))).toHaveLength(1);
    });
  });
}
