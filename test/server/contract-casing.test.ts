import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './server-harness.js';

// Every key the pipeline's author wrote (`with`, schemas) is snake_case too, so any camelCase key in an answer
// is one the API made up.
const PIPELINE = `
name: casing
max_parallel: 2
timeout: 10m
input: { type: object, properties: { text: { type: string } } }
steps:
  clean:
    uses: function
    timeout: 30s
    retry: { attempts: 2, delay: 1s }
    cache: { key: "\${{ input.text }}" }
    with: { name: clean, args: "\${{ input.text }}" }
  ask:
    needs: [clean]
    uses: approval
    with: { message: ship it? }
`;

/** Paths of object keys holding an upper-case letter, e.g. `steps[0].history[0].usage.tokensIn`. */
function camelKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => camelKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(/[A-Z]/.test(k) ? [`${path}.${k}`] : []), ...camelKeys(v, `${path}.${k}`)]);
}

describe('one casing: snake_case in every HTTP body', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({
      clean: (ctx) => {
        ctx.reportUsage({ model: 'm', tokensIn: 10, tokensOut: 4, cost: 0.5 });
        return { text: String(ctx.args).trim() };
      },
    });
    const put = await h.app.inject({ method: 'PUT', url: '/api/pipelines/casing', headers: { 'content-type': 'application/yaml' }, payload: PIPELINE });
    expect(put.statusCode).toBe(201);
  });
  afterEach(async () => h.close());

  it('answers the definition, runs, usage, decisions, stats and simulations without camelCase keys', async () => {
    const started = await h.app.inject({ method: 'POST', url: '/api/pipelines/casing/runs', payload: { input: { text: ' hi ' }, steps: ['clean'] } });
    const id = started.json().id as string;
    await h.engine.waitForRun(id, { pollMs: 20 });
    const gated = await h.app.inject({ method: 'POST', url: '/api/pipelines/casing/runs', payload: { input: { text: 'go' } } });
    const gatedId = gated.json().id as string;
    expect((await h.engine.waitForRun(gatedId, { pollMs: 20, untilSettled: true })).status).toBe('waiting');
    await h.app.inject({ method: 'POST', url: `/api/runs/${gatedId}/steps/ask/approval`, payload: { decision: 'approve', comment: 'ok' } });
    await h.engine.waitForRun(gatedId, { pollMs: 20 });

    const pipeline = (await h.app.inject({ url: '/api/pipelines/casing' })).json();
    expect(pipeline.definition).toMatchObject({ max_parallel: 2, fail_fast: true, timeout_ms: 600_000 });
    expect(pipeline.definition.steps[0]).toMatchObject({ timeout_ms: 30_000, on_failure: 'abort', retry: { attempts: 2, delay_ms: 1000 }, cache_files: { key: '${{ input.text }}', outputs_unchanged: false } });
    const run = (await h.app.inject({ url: `/api/runs/${id}` })).json();
    expect(run.selected_steps).toEqual(['clean']);
    expect(run.steps[0].history[0].usage).toEqual({ model: 'm', tokens_in: 10, tokens_out: 4, cost: 0.5 });
    const decisions = (await h.app.inject({ url: `/api/runs/${gatedId}/decisions` })).json();
    expect(decisions.decisions[0]).toMatchObject({ run_id: gatedId, step: 'ask', kind: 'human', decision: 'approve', budget_left: null });
    const stats = (await h.app.inject({ url: '/api/pipelines/casing/stats?buckets=2' })).json();
    expect(stats).toMatchObject({ runs: { by_status: { succeeded: 2 } }, tokens_in: 20, tokens_out: 8 });
    expect(stats.series[1]).toMatchObject({ by_status: { succeeded: 2 }, tokens_in: 20 });
    const simulated = (await h.app.inject({ method: 'POST', url: '/api/pipelines/casing/simulate', payload: { inputs: [{ text: 'x' }] } })).json();
    expect(simulated.runs[0].steps.clean.usage).toEqual({ model: 'm', tokens_in: 10, tokens_out: 4, cost: 0.5 });
    const validated = (await h.app.inject({ method: 'POST', url: '/api/pipelines/casing/validate', headers: { 'content-type': 'application/yaml' }, payload: PIPELINE })).json();
    expect(validated.definition.max_parallel).toBe(2);

    const bodies = {
      pipeline,
      validated,
      run,
      decisions,
      stats,
      simulated,
      started: started.json(),
      runs: (await h.app.inject({ url: '/api/runs' })).json(),
      versions: (await h.app.inject({ url: '/api/pipelines/casing/versions' })).json(),
      events: (await h.app.inject({ url: `/api/runs/${gatedId}/events` })).json(),
    };
    expect(camelKeys(bodies)).toEqual([]);
  });
});
