import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './server-harness.js';

const PIPELINE = `
name: docs
steps:
  clean:
    uses: function
    with: { name: clean, args: "\${{ input.text }}" }
  count:
    needs: [clean]
    uses: function
    with: { name: count, args: { text: "\${{ steps.clean.text }}", min: 2 } }
  shout:
    needs: [count]
    if: steps.count.words > 2
    uses: function
    with: { name: shout, args: "\${{ steps.clean.text }}" }
  flaky:
    needs: [clean]
    on_failure: continue
    uses: function
    with: { name: fail }
  off:
    disabled: true
    uses: function
    with: { name: clean, args: x }
  after:
    needs: [flaky]
    uses: function
    with: { name: shout, args: "\${{ $string(steps.flaky) }}" }
`;

describe('simulate and stats', () => {
  let h: Harness;
  let calls = 0;
  beforeEach(async () => {
    calls = 0;
    h = await startHarness({
      clean: (ctx) => {
        calls += 1;
        ctx.log('info', 'cleaning');
        ctx.reportUsage({ model: 'm', tokensIn: 10, tokensOut: 4, cost: 0.5 });
        return { text: String(ctx.args).trim().toLowerCase() };
      },
      count: (ctx) => ({ words: (ctx.args as { text: string }).text.split(/\s+/).length }),
      shout: (ctx) => String(ctx.args).toUpperCase(),
      stash: async (ctx) => ({ ref: await ctx.artifacts.putJson({ big: String(ctx.args) }) }),
      unstash: async (ctx) => ctx.artifacts.getJson(ctx.args as string),
      fail: () => {
        throw Object.assign(new Error('nope'), { code: 'STEP_FAILED' });
      },
    });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/docs', headers: { 'content-type': 'application/yaml' }, payload: PIPELINE });
  });
  afterEach(async () => h.close());

  async function storeCounts() {
    const store = h.engine.store;
    return {
      runs: (await store.listRuns({ limit: 10_000 })).length,
      events: (await store.listEvents({ limit: 100_000 })).length,
      versions: (await store.listPipelineVersions('docs')).length,
      lastEvent: await store.latestEventId!(),
    };
  }

  it('executes each sample inline with if/needs/with semantics and persists nothing', async () => {
    const before = await storeCounts();
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/pipelines/docs/simulate',
      payload: { docs: [{ text: '  Hello Big World ' }, { text: 'Hi there' }], verbose: true },
    });
    expect(res.statusCode).toBe(200);
    const [long, short] = res.json().runs;
    expect(long.status).toBe('succeeded');
    expect(long.steps.clean).toMatchObject({ status: 'succeeded', input: { args: '  Hello Big World ' }, output: { text: 'hello big world' }, usage: { tokens_in: 10 } });
    expect(long.steps.clean.logs).toEqual([{ stream: 'info', line: 'cleaning' }]);
    expect(long.steps.count).toMatchObject({ status: 'succeeded', input: { args: { text: 'hello big world', min: 2 } }, output: { words: 3 } });
    expect(long.steps.shout).toMatchObject({ status: 'succeeded', output: 'HELLO BIG WORLD' });
    expect(long.steps.flaky).toMatchObject({ status: 'failed', error: { code: 'STEP_FAILED', message: 'nope' } });
    expect(long.steps.after).toMatchObject({ status: 'succeeded', output: 'NULL' });
    expect(long.steps.off.status).toBe('skipped');
    expect(typeof long.steps.count.duration_ms).toBe('number');
    expect(short.steps.shout.status).toBe('skipped');
    expect(calls).toBe(2);
    expect(await storeCounts()).toEqual(before);
  });

  it('keeps artifacts written while simulating in memory', async () => {
    const yaml = 'name: blobs\nsteps:\n  put: { uses: function, with: { name: stash, args: "${{ input }}" } }\n  read: { needs: [put], uses: function, with: { name: unstash, args: "${{ steps.put.ref }}" } }\n';
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/blobs', headers: { 'content-type': 'application/yaml' }, payload: yaml });
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/blobs/simulate', payload: { inputs: ['payload'] } });
    expect(res.json().runs[0].steps.read, JSON.stringify(res.json())).toMatchObject({ output: { big: 'payload' } });
    expect(existsSync(join(h.dir, 'artifacts'))).toBe(false);
  });

  it('fails the simulated run when an abort step fails, cancelling what has not started', async () => {
    const yaml = 'name: strict\nsteps:\n  a: { uses: function, with: { name: fail } }\n  b: { needs: [a], uses: function, with: { name: shout, args: x } }\n';
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/strict', headers: { 'content-type': 'application/yaml' }, payload: yaml });
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/strict/simulate', payload: { inputs: [null] } });
    const [run] = res.json().runs;
    expect(run.status).toBe('failed');
    expect(run.steps.a.status).toBe('failed');
    expect(run.steps.b.status).toBe('cancelled');
    expect(run.steps.a.logs).toBeUndefined();
  });

  it('rejects a simulate request without samples, and unknown pipelines', async () => {
    expect((await h.app.inject({ method: 'POST', url: '/api/pipelines/docs/simulate', payload: {} })).json().error.code).toBe('REQUEST_INVALID');
    expect((await h.app.inject({ method: 'POST', url: '/api/pipelines/nope/simulate', payload: { inputs: [1] } })).statusCode).toBe(404);
  });

  it('reports counts by status, duration percentiles, tokens and cost per pipeline and step', async () => {
    for (const text of ['a b c', 'd e', 'f g h i']) {
      const { run } = await h.engine.startRun('docs', { input: { text } });
      await h.engine.waitForRun(run.id, { pollMs: 20 });
    }
    const stats = (await h.app.inject({ url: '/api/pipelines/docs/stats' })).json();
    expect(stats.runs.by_status).toEqual({ succeeded: 3 });
    expect(stats.runs.duration.count).toBe(3);
    expect(stats.runs.duration.p50).toBeGreaterThanOrEqual(0);
    const byName = Object.fromEntries(stats.steps.map((s: { name: string }) => [s.name, s]));
    expect(stats.steps.map((s: { name: string }) => s.name)).toEqual(['clean', 'count', 'shout', 'flaky', 'off', 'after']);
    expect(byName.shout.by_status).toEqual({ succeeded: 2, skipped: 1 });
    expect(byName.flaky.by_status).toEqual({ failed: 3 });
    expect(byName.clean).toMatchObject({ tokens_in: 30, tokens_out: 12, cost: 1.5 });
    expect(byName.clean.duration).toMatchObject({ count: 3 });
    expect(stats).toMatchObject({ tokens_in: 30, tokens_out: 12, cost: 1.5 });
    const later = (await h.app.inject({ url: `/api/pipelines/docs/stats?since=${Date.now() + 60_000}` })).json();
    expect(later.runs.by_status).toEqual({});
    const iso = await h.app.inject({ url: `/api/pipelines/docs/stats?since=2020-01-01T00:00:00Z` });
    expect(iso.json().runs.by_status).toEqual({ succeeded: 3 });
  });
});
