import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe('GET /api/runs/:id says why each step ran or was cached', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions);
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterEach(async () => h.close());

  async function runSteps(input: unknown): Promise<Array<{ name: string; status: string; cache_explain: unknown; cache_reason: string | null }>> {
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input } });
    const id = res.json().id as string;
    await h.engine.waitForRun(id, { pollMs: 20 });
    return (await h.app.inject({ url: `/api/runs/${id}` })).json().steps;
  }

  it('first run, then cached from that run, then ran because the input changed', async () => {
    const first = await runSteps({ title: 'write the docs' });
    expect(first[0]).toMatchObject({ name: 'split', cache_explain: { decision: 'ran', reason: 'first_run' }, cache_reason: 'ran: first run (no earlier result)' });
    const again = await runSteps({ title: 'write the docs' });
    expect(again[0]).toMatchObject({ status: 'cached', cache_explain: { decision: 'cached', reason: 'unchanged' } });
    expect(again[0]!.cache_reason).toMatch(/^cached: nothing changed since run \S+$/);
    const other = await runSteps({ title: 'write the tests' });
    expect(other[0]).toMatchObject({ status: 'succeeded', cache_explain: { decision: 'ran', reason: 'changed', changed: ['with', 'input'] } });
    expect(other[0]!.cache_reason).toBe('ran: with changed, run input changed');
  });
});
