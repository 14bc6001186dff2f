import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import type { AttemptResult, ClaimedAttempt, Store } from '../../src/store/store.js';
import { backends } from '../support/backends.js';
import { startDrivenRun } from '../support/driven-run.js';
import { testSteps } from '../support/test-steps.js';

// A completion that leases the next attempts in its own transaction hands each the outputs it has just written for
// that attempt's run (`ClaimedAttempt.upstream`), so that a chain's next step need not read its input back. What
// comes along must be what the store reads back (PostgreSQL's jsonb reorders keys and drops nothing else here), and
// nothing may come along for a run whose other steps the transaction changed in other ways.
for (const backend of backends()) {
  describe(`outputs handed to the next attempt on ${backend.name}`, () => {
    const engines: Engine[] = [];
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
    });
    afterAll(() => backend.cleanup());

    const step = (extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { fn: 'x' }, ...extra });
    // Keys out of order, nesting, a Date (stored as its text), an undefined field (dropped) and a -0 (stored as 0).
    const output = { z: 1, a: [1, { y: 2, b: null }], when: new Date(0), gone: undefined, zero: -0, text: 'é\u2028"' };
    let clock = 0;

    async function setup(spec: PipelineSpec): Promise<{ store: Store; runId: string }> {
      const started = await startDrivenRun(backend, spec, engines);
      clock = Date.now() + 1000;
      return started;
    }

    const result = (a: ClaimedAttempt, extra: Partial<AttemptResult>): AttemptResult => ({ attemptId: a.id, fence: a.fence, owner: 'w', outcome: 'succeeded', processingMs: 1, ...extra });
    const claimNext = { owner: 'w', limit: 10, leaseMs: 60_000 };

    it("the next step of a chain gets its need's output as the store reads it back", async () => {
      const { store, runId } = await setup({ name: 'chain', steps: { a: step(), b: step({ needs: ['a'] }) } });
      const [a] = (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
      const batch = await store.completeAttempts([result(a!, { output })], ++clock, claimNext);
      const [b, ...rest] = batch.claimed;
      expect([b?.step, rest]).toEqual(['b', []]);
      const stored = (await store.getStepOutputs(runId, ['a']))['a'];
      expect(Object.keys(b!.upstream ?? {})).toEqual(['a']);
      // Same value, same key order, as reading the step's output from the store gives.
      expect(JSON.stringify(JSON.parse(b!.upstream!['a']!))).toBe(JSON.stringify(stored));
    });

    it('the outputs of a batch of results come along, each to the attempts of its own run', async () => {
      const spec = { name: 'pairs', steps: { a: step(), b: step({ needs: ['a'] }) } };
      const { store } = await setup(spec);
      await engines[0]!.startRun('pairs');
      const first = (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
      expect(first.map((x) => x.step)).toEqual(['a', 'a']);
      const batch = await store.completeAttempts(first.map((x, i) => result(x, { output: { run: i } })), ++clock, claimNext);
      expect(batch.claimed.map((x) => x.step)).toEqual(['b', 'b']);
      for (const b of batch.claimed) {
        const i = first.findIndex((x) => x.runId === b.runId);
        expect(JSON.parse(b.upstream!['a']!)).toEqual({ run: i });
      }
    });

    it('nothing comes along for a run in which the same transaction recorded a failure', async () => {
      const { store } = await setup({ name: 'mixed', steps: { a: step(), c: step({ retry: { attempts: 2, delay: '1ms' } }), b: step({ needs: ['a'] }) } });
      const first = (await store.claimAttempts('w', 10, 60_000, ++clock)).attempts;
      const byName = new Map(first.map((x) => [x.step, x]));
      const failed = result(byName.get('c')!, { outcome: 'failed', error: { code: 'STEP_FAILED', message: 'no' }, retryable: true, retryDelayMs: 0 });
      const batch = await store.completeAttempts([result(byName.get('a')!, { output }), failed], ++clock, claimNext);
      const b = batch.claimed.find((x) => x.step === 'b');
      expect(b).toBeDefined();
      expect(b!.upstream).toBeUndefined();
    });
  });
}

for (const backend of backends()) {
  describe(`a chain on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());

    it('runs each next step on the output it was handed, reading no step output back from the store', async () => {
      const store = await backend.create();
      let reads = 0;
      const getStepOutputs = store.getStepOutputs.bind(store);
      store.getStepOutputs = (runId, names) => {
        reads += 1;
        return getStepOutputs(runId, names);
      };
      const seen: unknown[] = [];
      const steps = testSteps({
        first: () => ({ z: 1, a: new Date(0), n: [1, 2] }),
        next: (ctx) => {
          seen.push(ctx.steps);
          return { z: 2, from: Object.keys(ctx.steps) };
        },
      });
      const engine = new Engine({ store, steps, onError: (e) => console.error(e) });
      try {
        const spec: PipelineSpec = {
          name: 'handed',
          steps: {
            a: { uses: 'function', with: { fn: 'first' }, cache: false },
            b: { uses: 'function', with: { fn: 'next' }, cache: false, needs: ['a'] },
            c: { uses: 'function', with: { fn: 'next' }, cache: false, needs: ['b'] },
          },
        };
        await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
        engine.startWorker({ concurrency: 4 });
        const { run } = await engine.startRun('handed');
        expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
        expect(seen).toEqual([{ a: { z: 1, a: '1970-01-01T00:00:00.000Z', n: [1, 2] } }, { b: { z: 2, from: ['a'] } }]);
        expect(reads).toBe(0);
      } finally {
        await engine.close();
      }
    });
  });
}
