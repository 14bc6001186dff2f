import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };

/** Flow control over HTTP: what a client of `POST /api/pipelines/:name/runs` and `POST /api/events/:name` sees. */
describe('flow control over HTTP', () => {
  let h: Harness;
  afterEach(async () => h.close());

  async function serve(rules: string): Promise<void> {
    // No worker: runs stay queued, so each answer shows the start time the rule gave.
    h = await startHarness({ noop: () => null }, { worker: false });
    const yaml = `name: bursty\ntriggers:\n  - event: order.placed\n${rules}\nsteps:\n  only: { uses: function, with: { name: noop } }\n`;
    const res = await h.app.inject({ method: 'PUT', url: '/api/pipelines/bursty', headers: YAML, payload: yaml });
    expect(res.statusCode, res.body).toBeLessThan(300);
  }
  const start = (input: unknown) => h.app.inject({ method: 'POST', url: '/api/pipelines/bursty/runs', payload: { input } });

  it('a start over rate_limit is 429 RATE_LIMITED with a Retry-After header in seconds; other customers still start', async () => {
    await serve('rate_limit: { limit: 2, period: 90s, key: "${{ input.customer }}" }');
    expect((await start({ customer: 'acme' })).statusCode).toBe(201);
    expect((await start({ customer: 'acme' })).statusCode).toBe(201);
    const refused = await start({ customer: 'acme' });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(80);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(90);
    expect(refused.json().error).toMatchObject({ code: 'RATE_LIMITED', details: { key: 'acme', limit: 2, period_ms: 90_000 } });
    // The server's real clock moved a little since the window opened.
    expect(refused.json().error.details.retry_after_ms).toBeGreaterThan(80_000);
    expect(refused.json().error.details.retry_after_ms).toBeLessThanOrEqual(90_000);
    expect(refused.json().error.message).toContain('pipeline bursty is rate limited for key "acme"');
    expect((await start({ customer: 'globex' })).statusCode).toBe(201);
    const event = await h.app.inject({ method: 'POST', url: '/api/events/order.placed', payload: { customer: 'acme' } });
    expect(event.statusCode).toBe(429);
  });

  it('a skipped singleton start answers 200 with the active run and flow.skipped', async () => {
    await serve('singleton: { mode: skip }');
    const first = await start({ n: 1 });
    expect(first.statusCode).toBe(201);
    const second = await start({ n: 2 });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ id: first.json().id, created: false, flow: { skipped: true } });
  });

  it('a run held by a singleton queue shows no start time and the run it waits for, until it is released', async () => {
    await serve('singleton: { mode: queue }');
    const first = await start({ n: 1 });
    const second = await start({ n: 2 });
    expect(second.statusCode).toBe(201);
    expect(second.json()).toMatchObject({ status: 'queued', run_at: null, flow: { after_run_id: first.json().id } });
    const read = await h.app.inject({ url: `/api/runs/${second.json().id}` });
    expect(read.json()).toMatchObject({ status: 'queued', run_at: null, flow: { after_run_id: first.json().id } });
    const listed = (await h.app.inject({ url: '/api/runs' })).json().runs as Array<{ id: string; run_at: number | null }>;
    expect(listed.find((r) => r.id === second.json().id)?.run_at).toBeNull();
    expect(listed.find((r) => r.id === first.json().id)?.run_at).toEqual(expect.any(Number));
    // Once the run it waits for ends, it is released with a start time of now.
    expect((await h.app.inject({ method: 'POST', url: `/api/runs/${first.json().id}/cancel` })).statusCode).toBe(200);
    await h.engine.heldRuns.settled();
    const released = (await h.app.inject({ url: `/api/runs/${second.json().id}` })).json();
    expect(released).toMatchObject({ status: 'queued', flow: { after_run_id: null } });
    expect(released.run_at).toBeLessThanOrEqual(Date.now());
  });

  it('a debounced start shows its run as queued with run_at and how many requests it absorbed', async () => {
    await serve('debounce: { period: 1h }');
    const first = await start({ n: 1 });
    const second = await start({ n: 2 });
    const third = await start({ n: 3 });
    expect(first.json()).toMatchObject({ created: true, status: 'queued', flow: { delayed_by: 'debounce', absorbed: 1 } });
    expect(third.json()).toMatchObject({ id: first.json().id, created: false, status: 'queued', input: { n: 3 }, flow: { absorbed: 3 } });
    expect(third.json().run_at).toBeGreaterThanOrEqual(second.json().run_at);
    expect(third.json().run_at - Date.now()).toBeGreaterThan(50 * 60_000);
    const read = await h.app.inject({ url: `/api/runs/${first.json().id}` });
    expect(read.json()).toMatchObject({ status: 'queued', input: { n: 3 }, flow: { absorbed: 3, after_run_id: null } });
  });
});
