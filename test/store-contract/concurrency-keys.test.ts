import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { sleep, testSteps, type TestFn } from '../support/test-steps.js';

/** Counts executions per key (and over all keys) that overlap in time. */
/**
 * Counts attempts running at once, per key and in all. An attempt holds until `ready` says the overlap the test
 * expects has happened (or a bound passes), then `ms` more: the peak is reached by barrier, not by timing, and
 * an engine that let more run at once would be seen during the extra hold.
 */
class Overlaps {
  private readonly running = new Map<string, number>();
  private waiters: Array<() => void> = [];
  readonly peak = new Map<string, number>();
  total = 0;
  peakTotal = 0;

  async hold(key: string, ms: number, ready: (o: Overlaps) => boolean = () => true): Promise<void> {
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
    this.total += 1;
    this.peak.set(key, Math.max(this.peak.get(key) ?? 0, this.running.get(key)!));
    this.peakTotal = Math.max(this.peakTotal, this.total);
    for (const wake of this.waiters.splice(0)) wake();
    try {
      await this.until(ready, 10_000);
      await sleep(ms);
    } finally {
      this.running.set(key, this.running.get(key)! - 1);
      this.total -= 1;
    }
  }

  /** Waits until `ready` holds (it only looks at peaks, which never go down) or `boundMs` passed. */
  private async until(ready: (o: Overlaps) => boolean, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!ready(this) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

for (const backend of backends()) {
  describe(`concurrency keys on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close().catch(() => undefined);
    });
    afterAll(() => backend.cleanup());

    const keyed = (limit: number): PipelineSpec => ({
      name: 'per-customer',
      max_parallel: 4,
      steps: {
        prepare: { uses: 'function', with: { fn: 'quick' } },
        call: { uses: 'function', needs: ['prepare'], with: { fn: 'work' }, concurrency_key: '${{ "customer-" & input.customer }}', concurrency_limit: limit },
      },
    });

    /** Engines sharing one store, each with its own worker (unless `workers` is 0). */
    async function setup(spec: PipelineSpec, fns: Record<string, TestFn>, workers: number, store?: Store) {
      const shared = store ?? (await backend.create());
      const steps = testSteps(fns);
      const started: Engine[] = [];
      for (let i = 0; i < Math.max(1, workers); i++) {
        const engine = new Engine({ store: shared, steps, onError: (e) => console.error(e), artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
        engines.push(engine);
        started.push(engine);
        if (workers > 0) engine.startWorker({ concurrency: 8, pollMs: 20, reapMs: 50 });
      }
      await started[0]!.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      return { engines: started, store: shared };
    }

    it('never runs more attempts of one key at once than its limit, across runs and workers', async () => {
      const overlaps = new Overlaps();
      // Each attempt holds until two of the key ran at once: the limit must allow that, and never a third.
      const work: TestFn = (ctx) => overlaps.hold(String((ctx.input as { customer: string }).customer), 60, (o) => (o.peak.get('acme') ?? 0) >= 2);
      const { engines: [a, b] } = await setup(keyed(2), { quick: () => 1, work }, 2);
      const runs = [];
      for (let i = 0; i < 6; i++) runs.push((await (i % 2 === 0 ? a! : b!).startRun('per-customer', { input: { customer: 'acme' } })).run);
      const done = await Promise.all(runs.map((r) => a!.waitForRun(r.id)));
      expect(done.map((r) => r.status)).toEqual(Array(6).fill('succeeded'));
      expect(overlaps.peak.get('acme')).toBe(2);
      const attempts = await Promise.all(runs.map((r) => a!.store.listAttempts(r.id, 'call')));
      // Steps waiting on the key stayed queued: one attempt each, never started and given back.
      expect(attempts.map((list) => list.length)).toEqual(Array(6).fill(1));
    });

    it('does not let one key hold back another', async () => {
      const overlaps = new Overlaps();
      // Each attempt holds until an attempt of each key ran at once: one key must not wait for the other.
      const work: TestFn = (ctx) => overlaps.hold(String((ctx.input as { customer: string }).customer), 60, (o) => o.peakTotal >= 2);
      const { engines: [engine] } = await setup(keyed(1), { quick: () => 1, work }, 1);
      // Created together, so a slow machine cannot finish one key's first run before the other key's starts.
      const created = await engine!.startRuns('per-customer', ['acme', 'acme', 'globex', 'globex'].map((customer) => ({ input: { customer } })));
      const runs = created.map((c) => c.run);
      const done = await Promise.all(runs.map((r) => engine!.waitForRun(r.id)));
      expect(done.map((r) => r.status)).toEqual(Array(4).fill('succeeded'));
      expect(overlaps.peak.get('acme')).toBe(1);
      expect(overlaps.peak.get('globex')).toBe(1);
      expect(overlaps.peakTotal).toBe(2);
    });

    it('refuses to start a run whose key reads step outputs, which do not exist when it is rendered', async () => {
      const spec: PipelineSpec = {
        name: 'late-key',
        steps: { a: { uses: 'function', with: { fn: 'work' } }, b: { uses: 'function', needs: ['a'], with: { fn: 'work' }, concurrency_key: '${{ steps.a.id }}' } },
      };
      const { engines: [engine] } = await setup(spec, { work: () => ({ id: 1 }) }, 0);
      await expect(engine!.startRun('late-key', { input: {} })).rejects.toMatchObject({ code: 'EXPRESSION_FAILED', message: expect.stringContaining('reads steps.a') });
    });

    it('takes an attempt without a key from behind older ones whose key is full, even in a claim of one', async () => {
      const spec: PipelineSpec = { name: 'single', steps: { call: { uses: 'function', with: { fn: 'work' }, concurrency_key: '${{ input.customer }}' } } };
      const { engines: [engine], store } = await setup(spec, { work: () => 1 }, 0);
      await engine!.registerPipeline(normalizePipeline({ name: 'free', steps: { call: { uses: 'function', with: { fn: 'work' } } } }, { stepTypes: engine!.steps }));
      const first = (await engine!.startRun('single', { input: { customer: 'acme' } })).run;
      await engine!.startRun('single', { input: { customer: 'acme' } });
      const free = (await engine!.startRun('free', { input: {} })).run;
      const now = Date.now() + 1000;
      expect((await store.claimAttempts('worker', 1, 1000, now)).attempts.map((a) => a.runId)).toEqual([first.id]);
      // The second acme attempt is older, but its key is full: a claim of one must not stop at it.
      expect((await store.claimAttempts('worker', 1, 1000, now + 1)).attempts.map((a) => a.runId)).toEqual([free.id]);
    });

    it('frees the slot of an attempt whose lease expired', async () => {
      const spec: PipelineSpec = { name: 'single', steps: { call: { uses: 'function', with: { fn: 'work' }, concurrency_key: '${{ input.customer }}' } } };
      const { engines: [engine], store } = await setup(spec, { work: () => 1 }, 0);
      const first = (await engine!.startRun('single', { input: { customer: 'acme' } })).run;
      const second = (await engine!.startRun('single', { input: { customer: 'acme' } })).run;
      const other = (await engine!.startRun('single', { input: { customer: 'globex' } })).run;
      const now = Date.now();
      // A worker takes one attempt of each key, then dies holding it.
      const crashed = await store.claimAttempts('crashed-worker', 10, 1000, now);
      expect(crashed.attempts.map((a) => a.runId).sort()).toEqual([first.id, other.id].sort());
      expect((await store.claimAttempts('live-worker', 10, 1000, now + 10)).attempts).toEqual([]);
      expect((await store.listSteps(second.id))[0]?.status).toBe('queued');
      // Its lease expires: the reaper re-queues its attempt, and the key has room for one again.
      const reaped = await store.reap(now + 2000);
      expect(reaped.expired).toBe(2);
      const next = await store.claimAttempts('live-worker', 10, 1000, now + 2001);
      expect(next.attempts.filter((a) => a.runId !== other.id)).toHaveLength(1);
      expect(next.attempts.filter((a) => a.runId === other.id)).toHaveLength(1);
      expect((await store.claimAttempts('live-worker', 10, 1000, now + 2002)).attempts).toEqual([]);
      // Finishing it lets the waiting one start, in the same transaction.
      const held = next.attempts.find((a) => a.runId !== other.id)!;
      const result = { attemptId: held.id, fence: held.fence, owner: 'live-worker', outcome: 'succeeded' as const, output: 1, processingMs: 1 };
      const completed = await store.completeAttempts([result], now + 2003, { owner: 'live-worker', limit: 5, leaseMs: 1000 });
      expect(completed.claimed.map((a) => a.runId)).toEqual([held.runId === first.id ? second.id : first.id]);
    });
  });
}
