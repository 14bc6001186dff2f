/**
 * The golden cross-backend test: the same scenarios run through the real engine on SQLite and on PostgreSQL
 * must record the same event sequence (types, steps, order, error codes and decisions; not ids or times).
 * The sequences are also kept as a snapshot, so a change of the run-state rules that alters what users see
 * shows up here even when both backends change alike.
 *
 * The worker runs one attempt at a time so that the order of events is decided by the rules alone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { PipelineSpec } from '../../src/core/model.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes, type StepFunction } from '../../src/steps/builtin.js';
import type { RunEvent } from '../../src/store/store.js';
import { backends, type Backend } from '../support/backends.js';

const all = backends();
afterAll(async () => {
  for (const b of all) await b.cleanup();
});

const fn = (name: string, extra: Record<string, unknown> = {}) => ({ uses: 'function', with: { name }, ...extra });

/** A promise with its resolver, to hold a step until the test lets it go. */
function barrier(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** One event as the golden sequence keeps it: type, step, error code, and a gate's or human's decision. */
function shape(e: RunEvent): string {
  const data = (e.data ?? {}) as { error?: { code?: string }; decision?: string; attempt?: number };
  const parts = [e.type, e.step ?? '-'];
  if (data.error?.code) parts.push(data.error.code);
  if (typeof data.decision === 'string') parts.push(data.decision);
  if (typeof data.attempt === 'number') parts.push(`#${data.attempt}`);
  return parts.join(' ');
}

interface Scenario {
  specs: PipelineSpec[];
  functions: (ctl: Control) => Record<string, StepFunction>;
  /** Starts the run, drives it (decisions, cancel, rollback) and returns the ids of the runs to compare. */
  drive: (engine: Engine, ctl: Control) => Promise<string[]>;
}

interface Control {
  started: ReturnType<typeof barrier>;
  release: ReturnType<typeof barrier>;
  calls: Map<string, number>;
}

/** Runs a scenario on one backend; returns each compared run's event sequence. */
async function play(backend: Backend, scenario: Scenario): Promise<string[][]> {
  const ctl: Control = { started: barrier(), release: barrier(), calls: new Map() };
  const steps = builtinStepTypes({ functions: scenario.functions(ctl) });
  const engine = new Engine({ store: await backend.create(), steps, onError: (e) => console.error(e) });
  try {
    for (const spec of scenario.specs) await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
    engine.startWorker({ pollMs: 10, reapMs: 50, heartbeatMs: 50, concurrency: 1 });
    const runIds = await scenario.drive(engine, ctl);
    const sequences: string[][] = [];
    for (const id of runIds) sequences.push((await engine.store.listEvents({ runId: id })).map(shape));
    return sequences;
  } finally {
    ctl.release.open();
    await engine.close();
  }
}

/** Counts calls of a step function by name. */
function count(ctl: Control, name: string): number {
  const n = (ctl.calls.get(name) ?? 0) + 1;
  ctl.calls.set(name, n);
  return n;
}

const ok: StepFunction = (ctx) => ctx.step;

async function finish(engine: Engine, runId: string, status: string): Promise<void> {
  expect((await engine.waitForRun(runId, { untilSettled: true })).status).toBe(status);
}

const scenarios: Record<string, Scenario> = {
  success: {
    specs: [{ name: 'ok', steps: { a: fn('ok'), zb: fn('ok', { needs: ['a'] }), yc: fn('ok', { needs: ['a'] }), d: fn('ok', { needs: ['zb', 'yc'] }) } }],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('ok');
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'retry then success': {
    specs: [{ name: 'retry', steps: { a: fn('flaky', { retry: { attempts: 3, delay: '1ms', jitter: false } }), b: fn('ok', { needs: ['a'] }) } }],
    functions: (ctl) => ({
      ok,
      flaky: () => {
        if (count(ctl, 'flaky') < 3) throw new Error('not yet');
        return 'done';
      },
    }),
    async drive(engine) {
      const { run } = await engine.startRun('retry');
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'fail-fast': {
    specs: [
      {
        name: 'ff',
        max_parallel: 1,
        steps: { boom: fn('boom', { retry: { attempts: 1 } }), zz: fn('ok'), yy: fn('ok'), after: fn('ok', { needs: ['boom'] }) },
      },
    ],
    functions: () => ({ ok, boom: () => Promise.reject(new Error('boom')) }),
    async drive(engine) {
      const { run } = await engine.startRun('ff');
      await finish(engine, run.id, 'failed');
      return [run.id];
    },
  },
  'on_failure continue and abort without fail-fast': {
    specs: [
      {
        name: 'nff',
        fail_fast: false,
        max_parallel: 1,
        steps: {
          soft: fn('boom', { retry: { attempts: 1 }, on_failure: 'continue' }),
          hard: fn('boom', { needs: ['soft'], retry: { attempts: 1 } }),
          zdown: fn('ok', { needs: ['hard'] }),
          other: fn('ok'),
        },
      },
    ],
    functions: () => ({ ok, boom: () => Promise.reject(new Error('boom')) }),
    async drive(engine) {
      const { run } = await engine.startRun('nff');
      await finish(engine, run.id, 'failed');
      return [run.id];
    },
  },
  cancel: {
    specs: [{ name: 'cancel', steps: { hold: fn('hold'), zz: fn('ok', { needs: ['hold'] }), yy: fn('ok', { needs: ['hold'] }), xx: fn('ok', { needs: ['yy'] }) } }],
    functions: (ctl) => ({
      ok,
      hold: async () => {
        ctl.started.open();
        await ctl.release.promise;
        return 'late';
      },
    }),
    async drive(engine, ctl) {
      const { run } = await engine.startRun('cancel');
      await ctl.started.promise;
      await engine.cancel(run.id);
      ctl.release.open();
      await finish(engine, run.id, 'cancelled');
      return [run.id];
    },
  },
  rollback: {
    specs: [{ name: 'rb', steps: { a: fn('ok'), b: fn('ok', { needs: ['a'] }), c: fn('ok', { needs: ['b'] }), x: fn('ok', { needs: ['a'] }) } }],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('rb');
      await finish(engine, run.id, 'succeeded');
      await engine.rollback(run.id, 'b');
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'run retry after failure': {
    specs: [{ name: 'redo', steps: { a: fn('ok'), b: fn('once', { needs: ['a'], retry: { attempts: 1 } }), c: fn('ok', { needs: ['b'] }) } }],
    functions: (ctl) => ({
      ok,
      once: () => {
        if (count(ctl, 'once') === 1) throw new Error('first time fails');
        return 'second time works';
      },
    }),
    async drive(engine) {
      const { run } = await engine.startRun('redo');
      await finish(engine, run.id, 'failed');
      await engine.retry(run.id);
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'gate retry then proceed': {
    specs: [
      {
        name: 'gated',
        steps: {
          analyse: fn('analyse'),
          check: {
            uses: 'gate',
            needs: ['analyse'],
            with: { rules: [{ name: 'min-rooms', expr: 'steps.analyse.rooms >= 2', severity: 'high' }], on_fail: { retry: 'analyse', budget: 2 } },
          },
          publish: fn('ok', { needs: ['check'] }),
        },
      },
    ],
    functions: () => ({ ok, analyse: (ctx) => ({ rooms: ctx.feedback ? 3 : 1 }) }),
    async drive(engine) {
      const { run } = await engine.startRun('gated');
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'gate budget spent blocks, then approved': {
    specs: [
      {
        name: 'budget',
        steps: {
          analyse: fn('ok'),
          check: { uses: 'gate', needs: ['analyse'], with: { rules: [{ name: 'never', expr: 'false', severity: 'high' }], on_fail: { retry: 'analyse', budget: 1, then: 'block' } } },
          after: fn('ok', { needs: ['check'] }),
        },
      },
    ],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('budget');
      await finish(engine, run.id, 'waiting');
      await engine.decide(run.id, 'check', { decision: 'approve', comment: 'accept as is' });
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  'gate budget spent fails': {
    specs: [
      {
        name: 'budget-fail',
        steps: {
          analyse: fn('ok'),
          check: { uses: 'gate', needs: ['analyse'], with: { rules: [{ name: 'never', expr: 'false', severity: 'high' }], on_fail: { retry: 'analyse', budget: 1, then: 'fail' } } },
          after: fn('ok', { needs: ['check'] }),
        },
      },
    ],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('budget-fail');
      await finish(engine, run.id, 'failed');
      return [run.id];
    },
  },
  'approval rejected': {
    specs: [{ name: 'appr', steps: { a: fn('ok'), gate: { uses: 'approval', needs: ['a'] }, b: fn('ok', { needs: ['gate'] }) } }],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('appr');
      await finish(engine, run.id, 'waiting');
      await engine.decide(run.id, 'gate', { decision: 'reject', comment: 'no' });
      await finish(engine, run.id, 'failed');
      return [run.id];
    },
  },
  'child run': {
    specs: [
      { name: 'child', steps: { double: fn('double'), label: fn('ok', { needs: ['double'] }) } },
      { name: 'parent', steps: { sub: { uses: 'pipeline', with: { pipeline: 'child', input: { n: '${{ input.n }}' } } }, after: fn('ok', { needs: ['sub'] }) } },
    ],
    functions: () => ({ ok, double: (ctx) => (ctx.input as { n: number }).n * 2 }),
    async drive(engine) {
      const { run } = await engine.startRun('parent', { input: { n: 21 } });
      await finish(engine, run.id, 'succeeded');
      const children = (await engine.store.listRuns({ pipeline: 'child' })).map((r) => r.id);
      expect(children).toHaveLength(1);
      return [run.id, children[0]!];
    },
  },
  'failing child run': {
    specs: [
      { name: 'bad-child', steps: { boom: fn('boom', { retry: { attempts: 1 } }) } },
      { name: 'bad-parent', steps: { sub: { uses: 'pipeline', with: { pipeline: 'bad-child' }, retry: { attempts: 1 } } } },
    ],
    functions: () => ({ boom: () => Promise.reject(new Error('boom')) }),
    async drive(engine) {
      const { run } = await engine.startRun('bad-parent');
      await finish(engine, run.id, 'failed');
      const children = (await engine.store.listRuns({ pipeline: 'bad-child' })).map((r) => r.id);
      return [run.id, ...children];
    },
  },
  map: {
    specs: [
      {
        name: 'fan',
        steps: {
          fan: {
            uses: 'map',
            with: { items: '${{ input.numbers }}', batch_size: 2, on_item_failure: 'continue', step: { uses: 'function', with: { name: 'square', args: { n: '${{ item }}' } } } },
          },
          sum: fn('ok', { needs: ['fan'] }),
        },
      },
    ],
    functions: () => ({
      ok,
      square: (ctx) => {
        const { n } = ctx.args as { n: number };
        if (n === 3) throw new Error('three is unlucky');
        return n * n;
      },
    }),
    async drive(engine) {
      const { run } = await engine.startRun('fan', { input: { numbers: [1, 2, 3, 4, 5] } });
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
  // A sleep's end shows as step.woken, written with the claim that runs the step again.
  sleep: {
    specs: [{ name: 'nap', steps: { nap: { uses: 'sleep', with: { for: '20ms' } }, after: fn('ok', { needs: ['nap'] }) } }],
    functions: () => ({ ok }),
    async drive(engine) {
      const { run } = await engine.startRun('nap');
      await finish(engine, run.id, 'succeeded');
      return [run.id];
    },
  },
};

describe(`golden event sequences on ${all.map((b) => b.name).join(' and ')}`, () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it(name, async () => {
      const results: string[][][] = [];
      for (const backend of all) results.push(await play(backend, scenario));
      for (let i = 1; i < results.length; i++) expect({ backend: all[i]!.name, events: results[i] }).toEqual({ backend: all[i]!.name, events: results[0] });
      expect(results[0]).toMatchSnapshot();
    });
  }
});
