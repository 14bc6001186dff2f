/**
 * Attribute pipelines on every backend: selection by input hash and version, batches, provenance,
 * overrides and approval, failures, record-save triggers, ordering and the checks made on save.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { attributeOrder } from '../../src/attributes/ordering.js';
import { computeValues } from '../../src/attributes/compute.js';
import { writeRecords } from '../../src/datasets/datasets.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import type { PipelineSpec } from '../../src/core/model.js';
import type { StepType } from '../../src/steps/step-type.js';
import { backends } from '../support/backends.js';
import { attributePipelines } from '../../src/attributes/extension.js';

const steps = builtinStepTypes();

function spec(overrides: Partial<PipelineSpec> = {}): PipelineSpec {
  return {
    name: 'price-band',
    dataset: 'products',
    target: 'band',
    source: { fields: ['price'] },
    batch_size: 3,
    steps: {
      band: {
        uses: 'code',
        with: {
          code: `if ($json.price < 0) throw new Error('negative price'); return { value: $json.price >= 100 ? 'high' : 'low', confidence: 0.9, justification: 'price ' + $json.price + (($value !== null) ? ' was ' + $value : '') };`,
        },
      },
    },
    ...overrides,
  };
}

for (const backend of backends()) {
  describe(`attribute pipelines on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());

    const setup = async (extraSteps: Array<StepType<any>> = [], triggerDebounceMs = 20) => {
      const store = await backend.create();
      const registry = new Map(steps);
      for (const t of extraSteps) registry.set(t.type, t);
      const engine = new Engine({ store, steps: registry, artifactsDir: '/tmp/sluice-test-artifacts', triggerDebounceMs, extensions: [attributePipelines()] });
      await store.putDataset('products', {}, 1);
      const register = (s: PipelineSpec) => engine.registerPipeline(normalizePipeline(s, { stepTypes: engine.steps }));
      const run = async (pipeline: string, input: unknown = {}) => {
        const { run: created } = await engine.startRun(pipeline, { input });
        return engine.waitForRun(created.id);
      };
      return { store, engine, register, run };
    };

    const products = (n: number, price = (i: number) => i * 30) =>
      Array.from({ length: n }, (_, i) => ({ id: `p${String(i).padStart(2, '0')}`, data: { title: `Product ${i}`, price: price(i) } }));

    it('computes every record in batches, then skips unchanged ones, recomputes a changed one and all after an edit', async () => {
      const { store, engine, register, run } = await setup();
      await store.putRecords('products', products(8), 1);
      const v1 = await register(spec());
      engine.startWorker();
      try {
        const first = await run('price-band');
        expect(first.status).toBe('succeeded');
        const stats = (await store.getStepOutputs(first.id, ['attribute']))['attribute'] as Record<string, unknown>;
        expect(stats).toMatchObject({ processed: 8, failed: 0, skipped: 0, batches: 3 });
        const value = (await store.getAttributeValues('products', 'p04'))['band']!;
        expect(value).toMatchObject({ value: 'high', confidence: 0.9, justification: 'price 120', pipeline: 'price-band', pipelineVersion: v1.version, runId: first.id, status: 'proposed' });
        expect(value.inputHash).toMatch(/^[0-9a-f]{64}$/);

        const again = await run('price-band');
        expect((await store.getStepOutputs(again.id, ['attribute']))['attribute']).toMatchObject({ processed: 0, skipped: 8 });

        await store.putRecords('products', [{ id: 'p01', data: { title: 'Product 1', price: 500 } }], 2);
        const one = await run('price-band');
        expect((await store.getStepOutputs(one.id, ['attribute']))['attribute']).toMatchObject({ processed: 1, skipped: 7 });
        expect((await store.getAttributeValues('products', 'p01'))['band']).toMatchObject({ value: 'high', justification: 'price 500 was low' });

        const forced = await run('price-band', { force: true });
        expect((await store.getStepOutputs(forced.id, ['attribute']))['attribute']).toMatchObject({ processed: 8, skipped: 0 });

        const v2 = await register(spec({ batch_size: 5 }));
        expect(v2.version).toBe(v1.version + 1);
        const bumped = await run('price-band');
        expect((await store.getStepOutputs(bumped.id, ['attribute']))['attribute']).toMatchObject({ processed: 8, batches: 2 });
        expect((await store.getAttributeValues('products', 'p00'))['band']).toMatchObject({ pipelineVersion: v2.version });
      } finally {
        await engine.stopWorker();
      }
    });

    it('never overwrites an override; approval marks a proposed value', async () => {
      const { store, engine, register, run } = await setup();
      await store.putRecords('products', products(3), 1);
      await register(spec());
      engine.startWorker();
      try {
        await run('price-band');
        const overridden = await store.overrideAttributeValue('products', 'p00', 'band', { value: 'premium', note: 'sold as premium' }, 5);
        expect(overridden).toMatchObject({ value: 'premium', status: 'overridden', note: 'sold as premium', confidence: null, justification: null, pipeline: null, runId: null });
        const approved = await store.approveAttributeValue('products', 'p01', 'band', undefined, 6);
        expect(approved).toMatchObject({ value: 'low', status: 'approved' });
        const forced = await run('price-band', { force: true });
        expect((await store.getStepOutputs(forced.id, ['attribute']))['attribute']).toMatchObject({ processed: 2, skipped: 1 });
        expect((await store.getAttributeValues('products', 'p00'))['band']).toMatchObject({ value: 'premium', status: 'overridden' });
        expect(await store.attributeSummary('products', 'band')).toEqual({ values: 3, avgConfidence: 0.9, byStatus: { proposed: 1, approved: 1, overridden: 1 } });
        await expect(store.overrideAttributeValue('products', 'nope', 'band', { value: 1 }, 7)).rejects.toMatchObject({ code: 'RECORD_NOT_FOUND' });
        await expect(store.approveAttributeValue('products', 'p02', 'colour', undefined, 7)).rejects.toMatchObject({ code: 'VALUE_NOT_FOUND' });
        const many = await store.listAttributeValues('products', ['p00', 'p02', 'nope']);
        expect([...many.keys()]).toEqual(['p00', 'p02']);
        expect(await store.deleteRecord('products', 'p00')).toBe(true);
        expect(await store.getAttributeValues('products', 'p00')).toEqual({});
      } finally {
        await engine.stopWorker();
      }
    });

    it('aborts at the first failed record, keeping the batches before it; continue counts it and goes on', async () => {
      const { store, engine, register, run } = await setup();
      await store.putRecords('products', products(8, (i) => (i === 4 ? -1 : i * 30)), 1);
      await register(spec());
      engine.startWorker();
      try {
        const aborted = await run('price-band');
        expect(aborted.status).toBe('failed');
        const [step] = await store.listSteps(aborted.id);
        expect(step!.error).toMatchObject({ code: 'RECORD_FAILED' });
        expect(step!.error!.message).toContain('record "p04" failed in step band: code step: code threw: Error: negative price (line 1, column 37)');
        expect((await store.getAttributeValues('products', 'p00'))['band']).toBeDefined();
        expect((await store.getAttributeValues('products', 'p07'))['band']).toBeUndefined();

        await register(spec({ on_record_failure: 'continue' }));
        const continued = await run('price-band');
        expect(continued.status).toBe('succeeded');
        const stats = (await store.getStepOutputs(continued.id, ['attribute']))['attribute'] as { failed: number; processed: number; failures: Array<{ record: string; step: string }> };
        expect(stats).toMatchObject({ processed: 7, failed: 1 });
        expect(stats.failures).toEqual([expect.objectContaining({ record: 'p04', step: 'band' })]);
      } finally {
        await engine.stopWorker();
      }
    });

    it('runs steps other than code per record, concurrently, with input = the source fields; a reader sees the writer\'s values', async () => {
      let inFlight = 0;
      let maxInFlight = 0;
      const slow: StepType<Record<string, unknown>> = {
        type: 'slow-upper',
        configSchema: { type: 'object' },
        async execute(ctx, config) {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 20));
          inFlight -= 1;
          ctx.reportUsage({ tokensIn: 10, tokensOut: 2 });
          return { value: `${String(config['label'])}:${String((ctx.input as { band: string }).band).toUpperCase()}`, confidence: 0.5 };
        },
      };
      const { store, engine, register, run } = await setup([slow]);
      await store.putRecords('products', products(6), 1);
      await register(spec());
      engine.startWorker();
      await run('price-band');
      await register({
        name: 'band-label',
        dataset: 'products',
        target: 'label',
        source: { fields: ['band', 'title'] },
        concurrency: 3,
        steps: { label: { uses: 'slow-upper', with: { label: '${{ input.title }}' } } },
      });
      try {
        const labels = await run('band-label');
        const stats = (await store.getStepOutputs(labels.id, ['attribute']))['attribute'];
        expect(stats).toMatchObject({ processed: 6, tokens_in: 60, tokens_out: 12, missing_fields: [] });
        expect(maxInFlight).toBe(3);
        expect((await store.getAttributeValues('products', 'p05'))['label']).toMatchObject({ value: 'Product 5:HIGH', confidence: 0.5 });
        expect(attributeOrder([
          { name: 'band-label', target: 'label', fields: ['band', 'title'] },
          { name: 'price-band', target: 'band', fields: ['price'] },
        ])).toEqual(['price-band', 'band-label']);

        const computed = await computeValues(engine, await engine.requirePipeline('band-label'), [{ recordId: 'p00' }, { input: { band: 'mid', title: 'X' } }, { recordId: 'missing' }]);
        expect(computed.map((c) => c.value)).toEqual(['Product 0:LOW', 'X:MID', null]);
        expect(computed[2]!.error).toMatchObject({ code: 'RECORD_NOT_FOUND' });
      } finally {
        await engine.stopWorker();
      }
    });

    it('a run skips a record another run of the pipeline computed from the same input while it was busy', async () => {
      const calls = new Map<string, number>();
      let entered!: () => void;
      const firstEntered = new Promise<void>((resolve) => (entered = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const sized: StepType<Record<string, unknown>> = {
        type: 'barrier-size',
        configSchema: { type: 'object' },
        async execute(_ctx, config) {
          const id = String(config['id']);
          calls.set(id, (calls.get(id) ?? 0) + 1);
          if (id === 'p00' && calls.get(id) === 1) {
            entered();
            await released;
          }
          return { value: `size of ${id}` };
        },
      };
      const { store, engine, register, run } = await setup([sized]);
      await store.putRecords('products', products(4), 1);
      await register({ ...spec(), name: 'sized', target: 'size', batch_size: 2, steps: { size: { uses: 'barrier-size', with: { id: '${{ record.id }}' } } } });
      engine.startWorker();
      try {
        // The full run has read every record (none has a value yet) and waits in its first batch (p00, p01).
        const { run: full } = await engine.startRun('sized', { input: {} });
        await firstEntered;
        // Meanwhile a record save's run computes p02, which is in the full run's second batch.
        const saved = await run('sized', { records: ['p02'], trigger: 'record' });
        expect(saved.status).toBe('succeeded');
        release();
        const done = await engine.waitForRun(full.id);
        expect(done.status).toBe('succeeded');
        expect(calls.get('p02')).toBe(1);
        expect((await store.getStepOutputs(full.id, ['attribute']))['attribute']).toMatchObject({ processed: 3, skipped: 1 });
        expect((await store.getAttributeValues('products', 'p02'))['size']).toMatchObject({ value: 'size of p02', runId: saved.id });
      } finally {
        await engine.stopWorker();
      }
    });

    it('refuses a second writer of a target and a cycle of readers, naming the cycle', async () => {
      const { register } = await setup();
      await register(spec());
      await expect(register(spec({ name: 'other-band' }))).rejects.toMatchObject({ code: 'TARGET_TAKEN', message: expect.stringContaining('price-band already writes band') });
      await register({ ...spec({ name: 'a-from-band', target: 'a', source: { fields: ['band'] } }) });
      const closing = register(spec({ name: 'price-band', source: { fields: ['a'] } }));
      await expect(closing).rejects.toMatchObject({ code: 'PIPELINE_CYCLE', message: expect.stringContaining('price-band (band) -> a-from-band (a) -> price-band (band)') });
      expect(() => normalizePipeline(spec({ source: { fields: ['band'] } }), { stepTypes: steps })).toThrow(/cannot also be a source field/);
      expect(() => normalizePipeline({ name: 'x', dataset: 'products', steps: { a: { uses: 'code', with: { code: 'return 1' } } } }, { stepTypes: steps })).toThrow(/needs target too/);
      expect(() => normalizePipeline({ name: 'x', batch_size: 5, steps: { a: { uses: 'code', with: { code: 'return 1' } } } }, { stepTypes: steps })).toThrow(/batch_size applies to attribute pipelines only/);
    });

    it('saving records triggers, debounced, the pipelines that read a changed field, for those records only', async () => {
      const { store, engine, register } = await setup([], 500);
      await store.putRecords('products', products(4), 1);
      await register(spec());
      engine.startWorker();
      try {
        const finished: string[] = [];
        engine.subscribe((e) => {
          if (e.type === 'run.succeeded') finished.push(e.runId);
        });
        await writeRecords(engine, 'products', [{ id: 'p01', data: { title: 'Product 1', price: 1000 } }]);
        await writeRecords(engine, 'products', [{ id: 'p01', data: { title: 'Product 1', price: 2000 } }, { id: 'p02', data: { title: 'Renamed', price: 60 } }]);
        await waitFor(() => finished.length >= 1);
        const runs = await store.listRuns({ pipeline: 'price-band', limit: 10 });
        expect(runs).toHaveLength(1);
        expect(runs[0]!.input).toEqual({ records: ['p01'], trigger: 'record' });
        expect((await store.getAttributeValues('products', 'p01'))['band']).toMatchObject({ value: 'high', justification: 'price 2000' });
      } finally {
        await engine.stopWorker();
      }
    });
  });
}

async function waitFor(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
