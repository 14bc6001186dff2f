import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };

describe('HTTP API routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({
      ...taskFunctions,
      boom: () => {
        throw Object.assign(new Error('boom'), { code: 'STEP_FAILED' });
      },
    });
  });
  afterEach(async () => h.close());

  async function register(body = TASK_YAML, name = 'tasks') {
    return h.app.inject({ method: 'PUT', url: `/api/pipelines/${name}`, headers: YAML, payload: body });
  }

  async function startAndFinish(input: unknown = { title: 'write the docs' }) {
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input } });
    expect(res.statusCode).toBe(201);
    const id = res.json().id as string;
    await h.engine.waitForRun(id, { pollMs: 20 });
    return id;
  }

  it('registers a YAML pipeline, versions it only when it changes, and lists it', async () => {
    const first = await register();
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ name: 'tasks', version: 1, created: true, steps: ['split', 'enrich'] });
    const same = await register();
    expect(same.statusCode).toBe(200);
    expect(same.json()).toMatchObject({ version: 1, created: false });
    const changed = await register(TASK_YAML.replace('name: tasks', 'name: tasks\ndescription: changed'));
    expect(changed.json()).toMatchObject({ version: 2, created: true });
    const versions = await h.app.inject({ url: '/api/pipelines/tasks/versions' });
    expect(versions.json().versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const list = await h.app.inject({ url: '/api/pipelines' });
    expect(list.json().pipelines).toHaveLength(1);
    const one = await h.app.inject({ url: '/api/pipelines/tasks' });
    expect(one.json().definition.steps[1].needs).toEqual(['split']);
  });

  it('accepts a JSON definition and takes the name from the URL when the body has none', async () => {
    const body = JSON.stringify({ steps: { only: { uses: 'function', with: { name: 'split', args: 'a b' } } } });
    const res = await h.app.inject({ method: 'PUT', url: '/api/pipelines/from-json', headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe('from-json');
  });

  it('rejects an invalid definition with 400 and issues naming key path and line', async () => {
    const bad = TASK_YAML.replace('needs: [split]', 'needs: [splitt]');
    const res = await register(bad);
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('VALIDATION_FAILED');
    const issue = error.details.find((i: { path?: string }) => i.path?.startsWith('steps.enrich.needs'));
    expect(issue).toBeDefined();
    expect(issue.line).toBe(bad.split('\n').findIndex((l) => l.includes('splitt')) + 1);
    expect((await h.app.inject({ url: '/api/pipelines/tasks' })).statusCode).toBe(404);
  });

  it('names lines of a JSON body too', async () => {
    const body = '{\n  "name": "j",\n  "steps": {\n    "a": { "uses": "nope" }\n  }\n}\n';
    const res = await h.app.inject({ method: 'PUT', url: '/api/pipelines/j', headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0]).toMatchObject({ path: 'steps.a.uses', line: 4 });
  });

  it('rejects a body whose name differs from the URL', async () => {
    const res = await register(TASK_YAML, 'other');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0]).toMatchObject({ path: 'name', line: 2 });
  });

  it('validates without storing', async () => {
    const ok = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/validate', headers: YAML, payload: TASK_YAML });
    expect(ok.json()).toMatchObject({ valid: true });
    const bad = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/validate', headers: YAML, payload: 'name: tasks\nsteps: { a: { uses: nope } }' });
    expect(bad.json().valid).toBe(false);
    expect(bad.json().issues[0].path).toBe('steps.a.uses');
    expect((await h.app.inject({ url: '/api/pipelines' })).json().pipelines).toEqual([]);
  });

  it('draws the graph as json, mermaid and dot', async () => {
    await register();
    const json = await h.app.inject({ url: '/api/pipelines/tasks/graph' });
    expect(json.json().edges).toEqual([{ from: 'split', to: 'enrich' }]);
    const mermaid = await h.app.inject({ url: '/api/pipelines/tasks/graph?format=mermaid' });
    expect(mermaid.body).toContain('flowchart');
    const dot = await h.app.inject({ url: '/api/pipelines/tasks/graph?format=dot' });
    expect(dot.body).toContain('digraph');
  });

  it('starts a run, shows it with steps, attempts, events and logs', async () => {
    await register();
    const id = await startAndFinish();
    const run = (await h.app.inject({ url: `/api/runs/${id}` })).json();
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['split', 'succeeded'],
      ['enrich', 'succeeded'],
    ]);
    expect(run.steps[1].output).toEqual({ count: 3 });
    expect(run.steps[0].history[0].status).toBe('succeeded');
    const events = (await h.app.inject({ url: `/api/runs/${id}/events` })).json().events;
    expect(events[0].type).toBe('run.queued');
    expect(events.at(-1).type).toBe('run.succeeded');
    const logs = (await h.app.inject({ url: `/api/runs/${id}/steps/split/logs` })).json().logs;
    expect(logs.map((l: { line: string }) => l.line)).toContain('splitting write the docs');
    const listed = (await h.app.inject({ url: '/api/runs?pipeline=tasks&status=succeeded' })).json().runs;
    expect(listed.map((r: { id: string }) => r.id)).toEqual([id]);
    expect((await h.app.inject({ url: `/api/runs/${id}/steps/nope/logs` })).json().error.code).toBe('STEP_NOT_FOUND');
  });

  it('returns the same run for a repeated idempotency key', async () => {
    await register();
    const payload = { input: { title: 'x' }, idempotency_key: 'k-1', priority: 5, run_at: new Date(Date.now() + 60_000).toISOString() };
    const a = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload });
    const b = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload });
    expect([a.statusCode, b.statusCode]).toEqual([201, 200]);
    expect(b.json()).toMatchObject({ id: a.json().id, created: false, priority: 5, status: 'queued' });
    expect(a.json().run_at).toBeGreaterThan(Date.now());
    // The same key with a different request is a conflict naming the run, not the old run.
    const c = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { ...payload, input: { title: 'y' } } });
    expect(c.statusCode).toBe(409);
    expect(c.json().error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { run_id: a.json().id } });
    expect(c.json().error.message).toContain(a.json().id);
  });

  it('controls runs: cancel a delayed run, 409 on resuming a finished one, retry and rollback', async () => {
    await register();
    const delayed = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'later' }, run_at: Date.now() + 3_600_000 } });
    const cancel = await h.app.inject({ method: 'POST', url: `/api/runs/${delayed.json().id}/cancel` });
    expect(cancel.json().status).toBe('cancelled');
    const id = await startAndFinish();
    const resume = await h.app.inject({ method: 'POST', url: `/api/runs/${id}/resume` });
    expect(resume.statusCode).toBe(409);
    expect(resume.json().error.code).toBe('ILLEGAL_TRANSITION');
    const rollback = await h.app.inject({ method: 'POST', url: `/api/runs/${id}/rollback`, payload: { to: 'enrich' } });
    expect(rollback.statusCode).toBe(200);
    const done = await h.engine.waitForRun(id, { pollMs: 20 });
    expect(done.status).toBe('succeeded');
    const events = (await h.app.inject({ url: `/api/runs/${id}/events` })).json().events.map((e: { type: string }) => e.type);
    expect(events).toContain('checkpoint.created');
  });

  it('lists failed runs as dead letters and re-drives them', async () => {
    const yaml = 'name: fails\nsteps:\n  a: { uses: function, with: { name: boom } }\n';
    await register(yaml, 'fails');
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/fails/runs', payload: {} });
    await h.engine.waitForRun(res.json().id, { pollMs: 20 });
    const dead = (await h.app.inject({ url: '/api/dead-letters' })).json().runs;
    expect(dead.map((r: { id: string }) => r.id)).toEqual([res.json().id]);
    const retry = await h.app.inject({ method: 'POST', url: `/api/runs/${res.json().id}/retry` });
    expect(retry.statusCode).toBe(200);
    expect(['queued', 'running', 'failed']).toContain(retry.json().status);
  });

  it('approves a step waiting for a human and lists the decision', async () => {
    const yaml = 'name: gated\nsteps:\n  ask: { uses: approval, with: { message: ship it? } }\n  after: { needs: [ask], uses: function, with: { name: split, args: "${{ steps.ask.comment }}" } }\n';
    expect((await register(yaml, 'gated')).statusCode).toBe(201);
    const res = await h.app.inject({ method: 'POST', url: '/api/pipelines/gated/runs', payload: {} });
    const id = res.json().id as string;
    expect((await h.engine.waitForRun(id, { pollMs: 20, untilSettled: true })).status).toBe('waiting');
    const bad = await h.app.inject({ method: 'POST', url: `/api/runs/${id}/steps/ask/approval`, payload: { decision: 'maybe' } });
    expect(bad.json().error.code).toBe('REQUEST_INVALID');
    const ok = await h.app.inject({ method: 'POST', url: `/api/runs/${id}/steps/ask/approval`, payload: { decision: 'approve', comment: 'looks good' } });
    expect(ok.statusCode).toBe(200);
    expect((await h.engine.waitForRun(id, { pollMs: 20 })).status).toBe('succeeded');
    const run = (await h.app.inject({ url: `/api/runs/${id}` })).json();
    expect(run.steps[1].output).toEqual({ parts: ['looks', 'good'] });
    const again = await h.app.inject({ method: 'POST', url: `/api/runs/${id}/steps/ask/approval`, payload: { decision: 'reject' } });
    expect(again.statusCode).toBe(409);
    const decisions = await h.app.inject({ url: `/api/runs/${id}/decisions` });
    expect(decisions.statusCode).toBe(200);
    // Without auth the audit says the decision came over the API.
    expect(decisions.json().decisions).toMatchObject([{ step: 'ask', kind: 'human', decision: 'approve', comment: 'looks good', by: 'api' }]);
  });

  it('disables a pipeline on DELETE: kept and readable, new runs refused with 409', async () => {
    await register();
    const del = await h.app.inject({ method: 'DELETE', url: '/api/pipelines/tasks' });
    expect(del.json()).toMatchObject({ disabled: true, version: 2 });
    const run = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' } } });
    expect(run.statusCode).toBe(409);
    expect(run.json().error.code).toBe('PIPELINE_DISABLED');
    expect((await register()).json()).toMatchObject({ disabled: false, version: 3 });
  });

  it('starts every pipeline whose trigger names a posted event', async () => {
    await register();
    await register('name: other\ntriggers: [{ event: task.created }]\nsteps:\n  a: { uses: function, with: { name: split, args: "${{ input.title }}" } }\n', 'other');
    await register('name: unrelated\nsteps:\n  a: { uses: function, with: { name: split, args: x } }\n', 'unrelated');
    const res = await h.app.inject({ method: 'POST', url: '/api/events/task.created', payload: { title: 'from an event' } });
    expect(res.statusCode).toBe(201);
    expect(res.json().runs.map((r: { pipeline: string }) => r.pipeline).sort()).toEqual(['other', 'tasks']);
    expect(res.json().runs[0].input).toEqual({ title: 'from an event' });
  });

  describe('bad input gets a 4xx with a code, and the server keeps serving', () => {
    beforeEach(async () => {
      await register();
    });
    const cases: Array<[string, () => Promise<{ statusCode: number; json(): any }>, number, string]> = [
      ['malformed JSON', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', headers: { 'content-type': 'application/json' }, payload: '{"input": ' }), 400, 'MALFORMED_JSON'],
      ['unknown field', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: {}, colour: 'red' } }), 400, 'REQUEST_INVALID'],
      ['wrong type', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' }, priority: 'high' } }), 400, 'REQUEST_INVALID'],
      ['numeric string is not coerced in bodies', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' }, priority: '5' } }), 400, 'REQUEST_INVALID'],
      ['bad run_at', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' }, run_at: 'soon' } }), 400, 'REQUEST_INVALID'],
      ['unknown step in steps', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' }, steps: ['nope'] } }), 400, 'REQUEST_INVALID'],
      ['input not matching the pipeline schema', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 3 } } }), 400, 'INPUT_INVALID'],
      ['unknown pipeline', () => h.app.inject({ method: 'POST', url: '/api/pipelines/nope/runs', payload: {} }), 404, 'PIPELINE_NOT_FOUND'],
      ['unknown run', () => h.app.inject({ url: '/api/runs/r_nope' }), 404, 'RUN_NOT_FOUND'],
      ['unknown run for control', () => h.app.inject({ method: 'POST', url: '/api/runs/r_nope/pause' }), 404, 'RUN_NOT_FOUND'],
      ['rollback without to', () => h.app.inject({ method: 'POST', url: '/api/runs/r_nope/rollback', payload: {} }), 400, 'REQUEST_INVALID'],
      ['bad query', () => h.app.inject({ url: '/api/runs?status=sleeping' }), 400, 'REQUEST_INVALID'],
      ['bad pipeline name', () => h.app.inject({ url: '/api/pipelines/Bad%20Name' }), 400, 'REQUEST_INVALID'],
      ['unknown route', () => h.app.inject({ url: '/api/nothing' }), 404, 'ROUTE_NOT_FOUND'],
      ['oversized body', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x'.repeat(1_100_000) } } }), 413, 'PAYLOAD_TOO_LARGE'],
      ['unsupported content type', () => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', headers: { 'content-type': 'application/xml' }, payload: '<a/>' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ];
    for (const [name, send, status, code] of cases) {
      it(name, async () => {
        const res = await send();
        expect(res.statusCode).toBe(status);
        expect(res.json().error).toMatchObject({ code });
        expect(typeof res.json().error.message).toBe('string');
        expect((await h.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      });
    }
  });

  it('serves OpenAPI generated from the route schemas, docs, readiness and metrics', async () => {
    const doc = (await h.app.inject({ url: '/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    const start = doc.paths['/api/pipelines/{name}/runs'].post;
    expect(Object.keys(start.requestBody.content['application/json'].schema.properties)).toEqual(['input', 'idempotency_key', 'priority', 'run_at', 'steps', 'force']);
    expect(doc.paths['/api/stream']).toBeDefined();
    const docs = await h.app.inject({ url: '/docs' });
    expect([200, 302]).toContain(docs.statusCode);
    expect((await h.app.inject({ url: '/readyz' })).json().status).toBe('ready');
    await register();
    await startAndFinish();
    const metrics = await h.app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toContain('sluice_runs_total{pipeline="tasks",status="succeeded"} 1');
    expect(metrics.body).toContain('sluice_steps_total{pipeline="tasks",step="split",status="succeeded"} 1');
    expect(metrics.body).toContain('sluice_step_duration_seconds_count{pipeline="tasks",step="enrich",status="succeeded"} 1');
    expect(metrics.body).toContain('sluice_queue_depth{pipeline="tasks"} 0');
  });
});
