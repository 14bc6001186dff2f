import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe('GET /api/pipelines?summary=true', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions);
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/other', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML.replace('name: tasks', 'name: other') });
  });
  afterEach(async () => h.close());

  const list = async (query: string) => (await h.app.inject({ url: `/api/pipelines${query}` })).json().pipelines as Array<Record<string, unknown>>;

  it("answers each pipeline's newest run, eval counts and mean confidence in one request", async () => {
    expect((await list('?summary=true')).map((p) => [p['name'], p['last_run'], p['evals'], p['avg_confidence']])).toEqual([
      ['other', null, { total: 0, passed: 0, failed: 0, not_run: 0 }, null],
      ['tasks', null, { total: 0, passed: 0, failed: 0, not_run: 0 }, null],
    ]);
    const started = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'a b' } } });
    await h.engine.waitForRun(started.json().id, { pollMs: 20 });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks/evals', payload: { evals: [{ input: { title: 'x' }, desired_output: 1 }] } });

    const [tasks] = await list('?summary=true&name=tasks');
    expect(tasks).toMatchObject({ name: 'tasks', last_run: { id: started.json().id, status: 'succeeded' }, evals: { total: 1, not_run: 1 }, avg_confidence: null });
    expect(await list('?summary=true&name=nope')).toEqual([]);
    // Without summary the list stays as it was.
    expect((await list(''))[0]).not.toHaveProperty('last_run');
  });
});
