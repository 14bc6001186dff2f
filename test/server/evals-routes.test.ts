/** Evals over HTTP: list, replace, edit, run, from-override, re-runs after a run, roles and the OpenAPI document. */
import { afterEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { startHarness, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };

const DOUBLE = `
name: double
steps:
  twice:
    uses: code
    with:
      code: "return { value: input.n * 2, confidence: 0.9, justification: 'doubled ' + input.n }"
`;

const CATEGORY = `
name: product-category
dataset: products
target: category
source: { fields: [title] }
steps:
  classify:
    uses: code
    with:
      code: "return { value: /lamp/i.test($json.title) ? 'lighting' : 'other', confidence: 0.8 }"
`;

describe('eval routes', () => {
  let h: Harness;
  afterEach(async () => h.close());

  const put = (name: string, yaml: string) => h.app.inject({ method: 'PUT', url: `/api/pipelines/${name}`, payload: yaml, headers: YAML });
  const evalsUrl = (name: string) => `/api/pipelines/${name}/evals`;

  it('replaces, lists, runs and edits the cases of a pipeline', async () => {
    h = await startHarness({}, { worker: false });
    await put('double', DOUBLE);
    const set = await h.app.inject({
      method: 'PUT',
      url: evalsUrl('double'),
      payload: { evals: [{ input: { n: 2 }, desired_output: 4, notes: 'small' }, { input: { n: 3 }, desired_output: 7, comparator: 'number:0.5' }] },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toMatchObject({
      pipeline: 'double',
      evals: [
        { record_id: null, input: { n: 2 }, desired_output: 4, comparator: 'exact', notes: 'small', actual_output: null, passed: null, last_ran_at: null },
        { input: { n: 3 }, desired_output: 7, comparator: 'number:0.5', notes: null, passed: null },
      ],
      summary: { total: 2, passed: 0, failed: 0, not_run: 2 },
    });

    const ran = await h.app.inject({ method: 'POST', url: `${evalsUrl('double')}/run` });
    expect(ran.statusCode).toBe(200);
    const [first, second] = ran.json().evals;
    expect(first).toMatchObject({ actual_output: 4, passed: true, confidence: 0.9, justification: 'doubled 2', error: null, last_ran_at: expect.any(Number) });
    expect(second).toMatchObject({ actual_output: 6, passed: false });
    expect(ran.json().summary).toEqual({ total: 2, passed: 1, failed: 1, not_run: 0 });
    expect((await h.app.inject({ url: evalsUrl('double') })).json()).toEqual(ran.json());
    // No run is recorded by an eval pass.
    expect((await h.app.inject({ url: '/api/runs?pipeline=double' })).json().runs).toEqual([]);

    // Editing the desired output or comparator recomputes passed from the stored actual output at once.
    const patched = await h.app.inject({ method: 'PATCH', url: `${evalsUrl('double')}/${second.id}`, payload: { comparator: 'number:1', notes: 'looser' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id: second.id, actual_output: 6, passed: true, notes: 'looser', comparator: 'number:1' });
    const wrong = await h.app.inject({ method: 'PATCH', url: `${evalsUrl('double')}/${first.id}`, payload: { desired_output: 5 } });
    expect(wrong.json()).toMatchObject({ desired_output: 5, passed: false });
    expect((await h.app.inject({ url: evalsUrl('double') })).json().summary).toEqual({ total: 2, passed: 1, failed: 1, not_run: 0 });

    // A kept id keeps its last output; passed is recomputed for the new desired output.
    const kept = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ id: first.id, input: { n: 2 }, desired_output: 4 }] } });
    expect(kept.json().evals).toEqual([expect.objectContaining({ id: first.id, actual_output: 4, passed: true })]);
    expect(kept.json().summary).toEqual({ total: 1, passed: 1, failed: 0, not_run: 0 });
  });

  it('refuses bad cases naming the case and comparator, storing nothing', async () => {
    h = await startHarness({}, { worker: false });
    await put('double', DOUBLE);
    await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ input: { n: 1 }, desired_output: 2 }] } });
    const before = (await h.app.inject({ url: evalsUrl('double') })).json();

    const bad = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ input: { n: 1 }, desired_output: 2 }, { input: { n: 2 }, desired_output: 4, comparator: 'number:abc' }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/^eval case 1: comparator "number:abc"/) });
    const regex = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ input: { n: 1 }, desired_output: '([', comparator: 'regex' }] } });
    expect(regex.json().error.message).toMatch(/^eval case 0: comparator "regex": invalid pattern/);
    const record = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ record_id: 'r1', desired_output: 1 }] } });
    expect(record.json().error.message).toContain('eval case 0: pipeline double is not an attribute pipeline');
    const missing = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ input: { n: 1 } }] } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('REQUEST_INVALID');
    expect((await h.app.inject({ url: evalsUrl('double') })).json()).toEqual(before);

    const badPatch = await h.app.inject({ method: 'PATCH', url: `${evalsUrl('double')}/${before.evals[0].id}`, payload: { comparator: 'fuzzy' } });
    expect(badPatch.statusCode).toBe(400);
    expect(badPatch.json().error.message).toContain('unknown comparator "fuzzy"');
    expect((await h.app.inject({ method: 'PATCH', url: `${evalsUrl('double')}/424242`, payload: { notes: 'x' } })).json().error.code).toBe('EVAL_NOT_FOUND');
    for (const url of [evalsUrl('nope'), `${evalsUrl('nope')}/run`]) {
      const res = await h.app.inject({ method: url.endsWith('run') ? 'POST' : 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('PIPELINE_NOT_FOUND');
    }
  });

  it("adds a record's overridden value as an eval case, then updates that same case", async () => {
    h = await startHarness({}, { worker: false });
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products', payload: {} });
    await put('product-category', CATEGORY);
    await h.engine.store.putRecords('products', [{ id: 'p1', data: { title: 'Chair' } }, { id: 'p2', data: { title: 'Desk lamp' } }], 1);
    const override = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/overrides/category', payload: { value: 'seating' } });
    expect(override.statusCode).toBe(200);

    const url = `${evalsUrl('product-category')}/from-override`;
    const made = await h.app.inject({ method: 'POST', url, payload: { record_id: 'p1', notes: 'a chair is seating' } });
    expect(made.statusCode).toBe(200);
    expect(made.json()).toMatchObject({ record_id: 'p1', input: null, desired_output: 'seating', comparator: 'exact', notes: 'a chair is seating', passed: null });

    const ran = (await h.app.inject({ method: 'POST', url: `${evalsUrl('product-category')}/run` })).json();
    expect(ran.evals).toEqual([expect.objectContaining({ record_id: 'p1', actual_output: 'other', confidence: 0.8, passed: false })]);

    await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/overrides/category', payload: { value: 'other' } });
    const again = await h.app.inject({ method: 'POST', url, payload: { record_id: 'p1', dataset: 'products', field: 'category' } });
    expect(again.json()).toMatchObject({ id: made.json().id, desired_output: 'other', notes: 'a chair is seating', passed: true });
    expect((await h.app.inject({ url: evalsUrl('product-category') })).json().summary).toEqual({ total: 1, passed: 1, failed: 0, not_run: 0 });

    const noValue = await h.app.inject({ method: 'POST', url, payload: { record_id: 'p2' } });
    expect(noValue.statusCode).toBe(404);
    expect(noValue.json().error).toMatchObject({ code: 'VALUE_NOT_FOUND', message: 'record p2 of dataset products has no value for category' });
    expect((await h.app.inject({ method: 'POST', url, payload: { record_id: 'nope' } })).json().error.code).toBe('RECORD_NOT_FOUND');
    expect((await h.app.inject({ method: 'POST', url, payload: { record_id: 'p1', dataset: 'other' } })).statusCode).toBe(400);
    await put('double', DOUBLE);
    expect((await h.app.inject({ method: 'POST', url: `${evalsUrl('double')}/from-override`, payload: { record_id: 'p1' } })).json().error.code).toBe('VALIDATION_FAILED');
  });

  it('re-runs the evals of a pipeline after its run succeeds', async () => {
    h = await startHarness({}, { evals: {} });
    await put('double', DOUBLE);
    await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: { evals: [{ input: { n: 5 }, desired_output: 10 }] } });
    const started = await h.app.inject({ method: 'POST', url: '/api/pipelines/double/runs', payload: { input: { n: 1 } } });
    expect(started.statusCode).toBeLessThan(300);
    let report = (await h.app.inject({ url: evalsUrl('double') })).json();
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && report.summary.not_run > 0; ) {
      await new Promise((r) => setTimeout(r, 25));
      report = (await h.app.inject({ url: evalsUrl('double') })).json();
    }
    expect(report.evals).toEqual([expect.objectContaining({ actual_output: 10, passed: true })]);
  });

  it('lets a viewer read evals but not write or run them', async () => {
    h = await startHarness({}, { auth: 'on', worker: false });
    const admin = (await createApiToken(h.engine.store, 'admin', null)).token;
    const operator = (await createApiToken(h.engine.store, 'operator', null)).token;
    const viewer = (await createApiToken(h.engine.store, 'viewer', null)).token;
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/double', payload: DOUBLE, headers: { ...YAML, ...as(admin) } });
    const body = { evals: [{ input: { n: 1 }, desired_output: 2 }] };
    expect((await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: body, headers: as(viewer) })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: `${evalsUrl('double')}/run`, headers: as(viewer) })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: `${evalsUrl('double')}/from-override`, payload: { record_id: 'x' }, headers: as(viewer) })).statusCode).toBe(403);
    const set = await h.app.inject({ method: 'PUT', url: evalsUrl('double'), payload: body, headers: as(operator) });
    expect(set.statusCode).toBe(200);
    const id = set.json().evals[0].id;
    expect((await h.app.inject({ method: 'PATCH', url: `${evalsUrl('double')}/${id}`, payload: { notes: 'x' }, headers: as(viewer) })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: `${evalsUrl('double')}/run`, headers: as(operator) })).json().summary.passed).toBe(1);
    expect((await h.app.inject({ url: evalsUrl('double'), headers: as(viewer) })).json().summary).toEqual({ total: 1, passed: 1, failed: 0, not_run: 0 });
    expect((await h.app.inject({ url: evalsUrl('double') })).statusCode).toBe(401);
  });

  it('documents the routes in the OpenAPI document', async () => {
    h = await startHarness({}, { worker: false });
    const paths = (await h.app.inject({ url: '/openapi.json' })).json().paths;
    expect(Object.keys(paths['/api/pipelines/{name}/evals'])).toEqual(expect.arrayContaining(['get', 'put']));
    expect(paths['/api/pipelines/{name}/evals/{id}'].patch).toBeDefined();
    expect(paths['/api/pipelines/{name}/evals/run'].post).toBeDefined();
    expect(paths['/api/pipelines/{name}/evals/from-override'].post.requestBody.content['application/json'].schema.required).toEqual(['record_id']);
  });
});
