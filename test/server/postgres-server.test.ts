/** The server on PostgreSQL: the same routes, live stream, idempotency race, auth and stats as on SQLite. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { postgresBackend } from '../support/backends.js';
import { postgresDisabled } from '../support/postgres.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe.skipIf(postgresDisabled())('server on PostgreSQL', () => {
  const backend = postgresBackend();
  let h: Harness;
  let base: string;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { backend, auth: 'auto' });
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const put = await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
    expect(put.statusCode).toBe(201);
  });
  afterEach(async () => h.close());
  afterAll(async () => backend.cleanup());

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };

  it('creates one run for 50 concurrent POSTs with one key, runs it and streams its events', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => post('/api/pipelines/tasks/runs', { input: { title: 'pg run' }, idempotency_key: 'pg-key' })));
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    const id = answers[0]!.json.id as string;
    await h.engine.waitForRun(id, { pollMs: 20 });
    const got: string[] = [];
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    const ws = await h.app.injectWS(`/api/ws?run=${id}&after=0`, {}, {
      onInit: (socket) =>
        socket.on('message', (d: Buffer) => {
          got.push(JSON.parse(d.toString()).type);
          if (got.includes('run.succeeded')) done();
        }),
    });
    await finished;
    ws.terminate();
    expect(got.filter((t) => t === 'step.succeeded')).toHaveLength(2);
    const stats = (await h.app.inject({ url: '/api/pipelines/tasks/stats' })).json();
    expect(stats.runs.by_status).toEqual({ succeeded: 1 });
    expect(stats.steps.map((s: { name: string }) => s.name)).toEqual(['split', 'enrich']);
  });

  it('enforces tokens stored in PostgreSQL', async () => {
    const { token } = await createApiToken(h.engine.store, 'viewer', null);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(`${base}/api/runs`)).status).toBe(401);
    expect((await fetch(`${base}/api/runs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await post('/api/pipelines/tasks/runs', { input: { title: 'no' } }, { authorization: `Bearer ${token}` })).status).toBe(403);
  });
});
