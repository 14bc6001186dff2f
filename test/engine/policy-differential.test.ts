import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinStepTypes, createEngine, normalizePipeline, openStore, simulatePipeline, SluiceError, type Engine, type PipelineSpec } from '../../src/index.js';

/**
 * The same pipelines and failures, simulated in memory and run by the engine on a real SQLite store: step
 * statuses, the run's status and the error codes must agree, because both take their decisions from the one
 * step policy.
 */

const functions = {
  ok: (ctx: { args: unknown }) => ctx.args ?? 'ok',
  double: (ctx: { args: unknown }) => (ctx.args as number) * 2,
  // Fails with a retryable error on every try.
  boom: () => {
    throw new Error('boom');
  },
  // Fails with an error that says not to retry it.
  refuse: () => {
    throw new SluiceError('VALUE_REFUSED', 'refused', { retryable: false });
  },
  // Fails its first try and succeeds on the second.
  flaky: (ctx: { run: { attempt: number } }) => {
    if (ctx.run.attempt < 2) throw new Error('first try fails');
    return 'second try';
  },
  // Never finishes: only its step's timeout ends it.
  hang: (ctx: { signal: AbortSignal }) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
  draft: () => ({ score: 0 }),
};

const fn = (name: string, extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { name, ...(extra.args === undefined ? {} : { args: extra.args }) }, ...without(extra, 'args') });

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _drop, ...rest } = o;
  return rest;
}

/** A gate that always asks `draft` to run again; `then` says what a spent budget does. */
const gate = (then: 'block' | 'fail', extra: Record<string, unknown> = {}) => ({
  uses: 'gate',
  needs: ['draft'],
  with: { rules: [{ name: 'scored', expr: 'steps.draft.score > 0', severity: 'high' }], on_fail: { retry: 'draft', budget: 1, then } },
  ...extra,
});

const cases: Array<{ name: string; spec: Omit<PipelineSpec, 'name'> }> = [
  {
    name: 'gate-budget-fails',
    spec: { steps: { draft: fn('draft'), check: gate('fail'), after: fn('ok', { needs: ['check'] }) } },
  },
  {
    name: 'gate-budget-fails-continue',
    spec: { steps: { draft: fn('draft'), check: gate('fail', { on_failure: 'continue' }), after: fn('ok', { needs: ['check'] }) } },
  },
  {
    name: 'gate-budget-blocks',
    spec: { fail_fast: false, steps: { draft: fn('draft'), check: gate('block'), after: fn('ok', { needs: ['check'] }), other: fn('ok') } },
  },
  {
    name: 'map-item-template',
    spec: {
      steps: {
        list: fn('ok', { args: [1, 2, 3] }),
        each: { uses: 'map', needs: ['list'], with: { items: '${{ steps.list }}', step: { uses: 'function', with: { name: 'double', args: '${{ item }}' } } } },
      },
    },
  },
  {
    name: 'on-failure-continue',
    spec: { steps: { a: fn('boom', { on_failure: 'continue' }), b: fn('ok', { needs: ['a'] }) } },
  },
  {
    name: 'on-failure-abort-not-fail-fast',
    spec: { fail_fast: false, steps: { a: fn('refuse'), b: fn('ok', { needs: ['a'] }), c: fn('ok') } },
  },
  {
    name: 'fail-fast',
    spec: { steps: { a: fn('refuse'), b: fn('ok', { needs: ['a'] }), c: fn('ok') } },
  },
  {
    name: 'retries-spent',
    spec: { steps: { a: fn('boom', { retry: { attempts: 2, delay: 1 } }), b: fn('ok', { needs: ['a'] }) } },
  },
  {
    name: 'retry-succeeds',
    spec: { steps: { a: fn('flaky', { retry: { attempts: 2, delay: 1 } }), b: fn('ok', { needs: ['a'] }) } },
  },
  {
    name: 'if-skips',
    spec: { steps: { a: fn('ok', { if: '${{ false }}' }), b: fn('ok', { needs: ['a'] }), off: fn('boom', { disabled: true }) } },
  },
  {
    name: 'timeout',
    spec: { fail_fast: false, steps: { a: fn('hang', { timeout: 50, retry: { attempts: 2, delay: 1 } }), b: fn('ok', { needs: ['a'] }), c: fn('ok') } },
  },
];

interface Outcome {
  run: string;
  steps: Record<string, { status: string; code: string | null; attempts: number }>;
}

describe('the step policy: simulate and the engine agree', () => {
  const steps = builtinStepTypes({ functions: functions as never });
  let dir: string;
  let engine: Engine;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-policy-'));
    engine = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), steps });
    engine.startWorker({ pollMs: 5 });
  });

  afterAll(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function viaEngine(spec: PipelineSpec): Promise<Outcome> {
    const stored = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
    const { run } = await engine.startRun(stored, { input: null });
    const done = await engine.waitForRun(run.id, { untilSettled: true });
    const records = await untilQuiet(run.id);
    return { run: done.status, steps: Object.fromEntries(records.map((s) => [s.name, { status: s.status, code: s.error?.code ?? null, attempts: s.attempts }])) };
  }

  /** The run's steps once none is queued or running: a waiting run goes on with its other branches. */
  async function untilQuiet(runId: string) {
    for (let i = 0; ; i++) {
      const records = await engine.store.listSteps(runId);
      if (!records.some((s) => ['queued', 'running', 'retrying'].includes(s.status)) || i >= 500) return records;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async function viaSimulate(spec: PipelineSpec): Promise<Outcome> {
    const [sim] = await simulatePipeline(normalizePipeline(spec, { stepTypes: steps }), [null], { steps });
    return { run: sim!.status, steps: Object.fromEntries(Object.entries(sim!.steps).map(([name, s]) => [name, { status: s.status, code: s.error?.code ?? null, attempts: s.attempts }])) };
  }

  it.each(cases)('$name', async ({ name, spec }) => {
    // One step at a time, so which independent step ran before a failure is the written order in both.
    const full: PipelineSpec = { name: `diff-${name}`, max_parallel: 1, ...spec };
    const [engineOutcome, simulated] = [await viaEngine(full), await viaSimulate(full)];
    expect(simulated).toEqual(engineOutcome);
  });

  it('a gate whose budget is spent fails with GATE_FAILED in both', async () => {
    const spec: PipelineSpec = { name: 'diff-gate-code', max_parallel: 1, ...cases[0]!.spec };
    const [engineOutcome, simulated] = [await viaEngine(spec), await viaSimulate(spec)];
    expect(engineOutcome.steps['check']).toMatchObject({ status: 'failed', code: 'GATE_FAILED' });
    expect(simulated.steps['check']).toMatchObject({ status: 'failed', code: 'GATE_FAILED' });
  });

  it("a map step's per-item template sees each item in both", async () => {
    const spec: PipelineSpec = { name: 'diff-map-output', max_parallel: 1, ...cases.find((c) => c.name === 'map-item-template')!.spec };
    const stored = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
    const { run } = await engine.startRun(stored, { input: null });
    await engine.waitForRun(run.id);
    const [sim] = await simulatePipeline(normalizePipeline(spec, { stepTypes: steps }), [null], { steps });
    const engineOutput = (await engine.store.getStepOutputs(run.id, ['each']))['each'];
    expect(engineOutput).toMatchObject({ items: [2, 4, 6], succeeded: 3 });
    expect(sim!.output['each']).toEqual(engineOutput);
  });
});
