import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { startHarness, type Harness } from './server-harness.js';

describe('waiting steps over HTTP', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    const spec = {
      name: 'orders',
      input: { type: 'object', properties: { order_id: { type: 'string' } } },
      steps: { paid: { uses: 'wait_for_event', with: { event: 'order.paid', match: 'event.order_id = input.order_id', timeout: '2d' } } },
    };
    await h.engine.registerPipeline(normalizePipeline(spec, { stepTypes: builtinStepTypes() }));
  });
  afterEach(async () => h.close());

  async function waitingRun(orderId: string): Promise<string> {
    const { run } = await h.engine.startRun('orders', { input: { order_id: orderId } });
    for (let i = 0; i < 500; i++) {
      const view = (await h.app.inject({ url: `/api/runs/${run.id}` })).json();
      if (view.steps[0].status === 'waiting') return run.id;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the step never waited');
  }

  it('shows what a step waits for; a bad or unmatched event leaves it waiting; the matching event is its output', async () => {
    const id = await waitingRun('A-1');
    const view = (await h.app.inject({ url: `/api/runs/${id}` })).json();
    expect(view.status).toBe('running');
    expect(view.steps[0]).toMatchObject({ name: 'paid', status: 'waiting', output: { waiting_for: 'event', event: 'order.paid', match: 'event.order_id = input.order_id' } });
    expect(Date.parse(view.steps[0].output.until)).toBeGreaterThan(Date.now());
    const listed = (await h.app.inject({ url: '/api/runs?status=waiting' })).json();
    expect(listed.runs.map((r: { id: string }) => r.id)).toEqual([id]);

    const malformed = await h.app.inject({ method: 'POST', url: '/api/events/order.paid', headers: { 'content-type': 'application/json' }, payload: '{"order_id": ' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('MALFORMED_JSON');
    const other = await h.app.inject({ method: 'POST', url: '/api/events/order.paid', payload: { order_id: 'B-2' } });
    expect(other.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect((await h.app.inject({ url: `/api/runs/${id}` })).json().steps[0].status).toBe('waiting');

    const paid = await h.app.inject({ method: 'POST', url: '/api/events/order.paid', payload: { order_id: 'A-1', amount: 42 } });
    expect(paid.statusCode).toBe(200);
    expect((await h.engine.waitForRun(id, { pollMs: 20 })).status).toBe('succeeded');
    const done = (await h.app.inject({ url: `/api/runs/${id}` })).json();
    expect(done.steps[0]).toMatchObject({ status: 'succeeded', output: { order_id: 'A-1', amount: 42 } });
    const events = (await h.app.inject({ url: `/api/runs/${id}/events` })).json();
    expect(events.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['step.waiting', 'step.woken', 'step.succeeded']));
  });
});

describe('approval responses over HTTP', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    const spec = {
      name: 'review',
      steps: {
        ok: {
          uses: 'approval',
          with: {
            message: 'price ok?',
            response: { type: 'object', required: ['price'], properties: { price: { type: 'number', minimum: 0 }, note: { type: 'string' } }, additionalProperties: false },
          },
        },
      },
    };
    await h.engine.registerPipeline(normalizePipeline(spec, { stepTypes: builtinStepTypes() }));
  });
  afterEach(async () => h.close());

  it('a response that breaks the schema is a 400 naming the field and the run keeps waiting; a good one is the step output', async () => {
    const { run } = await h.engine.startRun('review');
    expect((await h.engine.waitForRun(run.id, { untilSettled: true, pollMs: 20 })).status).toBe('waiting');
    const url = `/api/runs/${run.id}/steps/ok/approval`;
    const bad = await h.app.inject({ method: 'POST', url, payload: { decision: 'approve', response: { price: 'ten' } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
    expect(bad.json().error.message).toContain('approval ok of run');
    expect(bad.json().error.message).toContain('response.price');
    const missing = await h.app.inject({ method: 'POST', url, payload: { decision: 'approve' } });
    expect(missing.statusCode).toBe(400);
    expect((await h.app.inject({ url: `/api/runs/${run.id}` })).json()).toMatchObject({ status: 'waiting', steps: [{ status: 'blocked' }] });
    expect((await h.app.inject({ url: `/api/runs/${run.id}/decisions` })).json().decisions).toEqual([]);

    const good = await h.app.inject({ method: 'POST', url, payload: { decision: 'approve', comment: 'fine', response: { price: 12.5 } } });
    expect(good.statusCode).toBe(200);
    expect((await h.engine.waitForRun(run.id, { pollMs: 20 })).status).toBe('succeeded');
    const step = (await h.app.inject({ url: `/api/runs/${run.id}` })).json().steps[0];
    expect(step.output).toMatchObject({ approved: true, response: { price: 12.5 }, by: 'api', human: { decision: 'approve', by: 'api', response: { price: 12.5 } } });
    expect((await h.app.inject({ url: `/api/runs/${run.id}/decisions` })).json().decisions).toMatchObject([{ step: 'ok', kind: 'human', decision: 'approve', by: 'api' }]);
  });
});
