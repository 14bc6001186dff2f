import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe('GET /api/runs pages', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { worker: false });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterEach(async () => h.close());

  it('walks all runs newest first with limit and next_cursor, and refuses a bad cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: `t${i}` } } })).json().id);
    const first = (await h.app.inject({ url: '/api/runs' })).json();
    expect(first.runs).toHaveLength(5);
    expect(first.next_cursor).toBeNull();

    const seen: string[] = [];
    let url = '/api/runs?pipeline=tasks&limit=2';
    for (let page = 0; page < 5; page++) {
      const body = (await h.app.inject({ url })).json();
      seen.push(...body.runs.map((r: { id: string }) => r.id));
      if (body.next_cursor === null) break;
      url = `/api/runs?pipeline=tasks&limit=2&cursor=${encodeURIComponent(body.next_cursor)}`;
    }
    expect(seen).toEqual([...ids].reverse());

    const bad = await h.app.inject({ url: '/api/runs?cursor=abc' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('cursor') });
  });
});
