/** Attribute pipelines over HTTP: registering (with the save-time checks), derived values with provenance, overrides, approval, dataset runs, stats. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { startHarness, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };

const CATEGORY = `
name: product-category
dataset: products
target: category
source: { fields: [title] }
steps:
  classify:
    uses: code
    with:
      code: "return { value: /lamp/i.test($json.title) ? 'lighting' : 'other', confidence: 0.8, justification: 'title says ' + $json.title }"
`;

const SHELF = `
name: product-shelf
dataset: products
target: shelf
source: { fields: [category] }
steps:
  shelf:
    uses: code
    with:
      code: "return $json.category === 'lighting' ? 'A1' : 'Z9'"
`;

describe('attribute routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({});
  });
  afterEach(async () => h.close());

  const put = (name: string, yaml: string) => h.app.inject({ method: 'PUT', url: `/api/pipelines/${name}`, payload: yaml, headers: YAML });
  const waitIdle = async (pipeline: string, runs: number) => {
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      const list = (await h.app.inject({ url: `/api/runs?pipeline=${pipeline}` })).json().runs as Array<{ status: string }>;
      if (list.length >= runs && list.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) return list;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`runs of ${pipeline} did not finish`);
  };

  it('runs a dataset in order, shows values with provenance, keeps overrides and approves values', async () => {
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products', payload: {} });
    expect((await put('product-category', CATEGORY)).statusCode).toBe(201);
    expect((await put('product-shelf', SHELF)).statusCode).toBe(201);
    const view = (await h.app.inject({ url: '/api/pipelines/product-shelf' })).json();
    expect(view.attribute).toMatchObject({ dataset: 'products', target: 'shelf', fields: ['category'], batch_size: 200, on_record_failure: 'abort', steps: ['shelf'] });

    // Saving records triggers both pipelines: the reader after the writer has stored its values.
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { title: 'Desk lamp' } });
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p2', payload: { title: 'Chair' } });
    await waitIdle('product-category', 1);
    await waitIdle('product-shelf', 1);
    const record = (await h.app.inject({ url: '/api/datasets/products/records/p1' })).json();
    expect(record.attributes.category).toMatchObject({ value: 'lighting', confidence: 0.8, justification: 'title says Desk lamp', pipeline: 'product-category', pipeline_version: 1, status: 'proposed' });
    expect(record.attributes.shelf).toMatchObject({ value: 'A1', confidence: null, pipeline: 'product-shelf' });

    const override = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p2/overrides/category', payload: { value: 'seating', note: 'it is a chair' } });
    expect(override.statusCode).toBe(200);
    expect(override.json()).toMatchObject({ value: 'seating', status: 'overridden', note: 'it is a chair' });
    const approve = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/approvals/category', payload: {} });
    expect(approve.json()).toMatchObject({ value: 'lighting', status: 'approved' });

    const runAll = await h.app.inject({ method: 'POST', url: '/api/datasets/products/runs', payload: { force: true } });
    expect(runAll.statusCode).toBe(202);
    expect(runAll.json().order).toEqual(['product-category', 'product-shelf']);
    await waitIdle('product-category', 2);
    await waitIdle('product-shelf', 3);
    const page = (await h.app.inject({ url: '/api/datasets/products/records' })).json();
    const p2 = page.records.find((r: { id: string }) => r.id === 'p2');
    expect(p2.attributes.category).toMatchObject({ value: 'seating', status: 'overridden' });
    expect(p2.attributes.shelf).toMatchObject({ value: 'Z9' });

    const stats = (await h.app.inject({ url: '/api/pipelines/product-category/stats' })).json();
    expect(stats.attributes).toMatchObject({ dataset: 'products', target: 'category', values: 2, by_status: { proposed: 0, approved: 1, overridden: 1 } });
    expect(stats.attributes.last_run).toMatchObject({ status: 'succeeded', processed: 1, skipped: 1, failed: 0 });

    expect((await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/nope/overrides/category', payload: { value: 1 } })).json().error.code).toBe('RECORD_NOT_FOUND');
    expect((await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p2/approvals/colour', payload: {} })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p2/overrides/category', payload: { note: 'no value' } })).statusCode).toBe(400);
  });

  it('warns, without refusing, about a missing dataset and a source field no record has', async () => {
    expect((await put('product-category', CATEGORY)).json().warnings).toEqual(['dataset products does not exist yet: create it before the pipeline runs']);
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products', payload: {} });
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { name: 'Lamp' } });
    const saved = await put('product-category', CATEGORY.replace('fields: [title]', 'fields: [title, name]'));
    expect(saved.statusCode).toBe(201);
    expect(saved.json().warnings).toEqual([expect.stringContaining('source field title is in none of the first 1 records of dataset products')]);
  });

  it('refuses a second writer of a field and a cycle, storing nothing', async () => {
    await put('product-category', CATEGORY);
    const taken = await put('other', CATEGORY.replace('name: product-category', 'name: other'));
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error).toMatchObject({ code: 'TARGET_TAKEN', message: expect.stringContaining('product-category already writes category') });
    await put('product-shelf', SHELF);
    const cycle = await put('product-category', CATEGORY.replace('fields: [title]', 'fields: [title, shelf]'));
    expect(cycle.statusCode).toBe(409);
    expect(cycle.json().error.message).toContain('product-category (category) -> product-shelf (shelf) -> product-category (category)');
    expect((await h.app.inject({ url: '/api/pipelines/product-category/versions' })).json().versions).toHaveLength(1);
    expect((await h.app.inject({ url: '/api/pipelines/other' })).statusCode).toBe(404);
  });

  it('lets a viewer read values but not override or approve them', async () => {
    await h.close();
    h = await startHarness({}, { auth: 'on' });
    const admin = (await createApiToken(h.engine.store, 'admin', null)).token;
    const viewer = (await createApiToken(h.engine.store, 'viewer', null)).token;
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products', payload: {}, headers: as(admin) });
    await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { title: 'Lamp' }, headers: as(admin) });
    expect((await h.app.inject({ url: '/api/datasets/products/records/p1', headers: as(viewer) })).json().attributes).toEqual({});
    const refused = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/overrides/category', payload: { value: 'x' }, headers: as(viewer) });
    expect(refused.statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/approvals/category', payload: {}, headers: as(viewer) })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: '/api/datasets/products/records/p1/overrides/category', payload: { value: 'x' }, headers: as(admin) })).statusCode).toBe(200);
  });
});
