/** Dataset routes: records over HTTP, bulk JSON / JSONL, bad input, and ingest pipelines with `code` steps. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { startHarness, type Harness } from './server-harness.js';

const YAML = { 'content-type': 'application/yaml' };
const JSONL = { 'content-type': 'application/x-ndjson' };

const INGEST_YAML = `
name: clean
steps:
  trim:
    uses: code
    with:
      code: "if (typeof input.title !== 'string') throw new Error('title is missing'); return { ...input, title: input.title.trim() }"
  label:
    needs: [trim]
    uses: code
    with:
      code: "return { ...steps.trim, label: steps.trim.title.toUpperCase() }"
`;

describe('dataset routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({}, { worker: false, bodyLimit: 64 * 1024 });
  });
  afterEach(async () => h.close());

  const createDataset = (name: string, body: Record<string, unknown> = {}) => h.app.inject({ method: 'PUT', url: `/api/datasets/${name}`, payload: body });
  const bulk = (name: string, payload: string | unknown[], headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/datasets/${name}/records:bulk`, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: typeof payload === 'string' ? { ...JSONL, ...headers } : { 'content-type': 'application/json', ...headers } });

  it('creates a dataset, puts, gets, lists and deletes records', async () => {
    const created = await createDataset('products');
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'products', ingest_pipeline: null });
    const put = await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { title: 'Lamp' } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ id: 'p1', data: { title: 'Lamp' } });
    expect((await h.app.inject({ url: '/api/datasets/products/records/p1' })).json().data).toEqual({ title: 'Lamp' });
    expect((await h.app.inject({ url: '/api/datasets/products' })).json()).toMatchObject({ name: 'products', records: 1 });
    expect((await h.app.inject({ url: '/api/datasets' })).json().datasets.map((d: { name: string }) => d.name)).toEqual(['products']);
    const del = await h.app.inject({ method: 'DELETE', url: '/api/datasets/products/records/p1' });
    expect(del.json()).toEqual({ deleted: 'p1' });
    expect((await h.app.inject({ url: '/api/datasets/products/records/p1' })).json().error.code).toBe('RECORD_NOT_FOUND');
    expect((await h.app.inject({ method: 'DELETE', url: '/api/datasets/products/records/p1' })).statusCode).toBe(404);
  });

  it('bulk-writes a JSON array or JSONL and pages the records with after/limit', async () => {
    await createDataset('products');
    const array = await bulk('products', Array.from({ length: 5 }, (_, i) => ({ id: `a${i}`, n: i })));
    expect(array.json()).toEqual({ written: 5 });
    const jsonl = await bulk('products', '{"sku": 7, "n": 7}\n\n{"sku": "b1", "n": 8}\n', {});
    expect(jsonl.statusCode).toBe(400); // no "id" field
    const withField = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records:bulk?id_field=sku', payload: '{"sku": 7, "n": 7}\n\n{"sku": "b1", "n": 8}\n', headers: JSONL });
    expect(withField.json()).toEqual({ written: 2 });
    const first = (await h.app.inject({ url: '/api/datasets/products/records?limit=4' })).json();
    expect(first.records.map((r: { id: string }) => r.id)).toEqual(['7', 'a0', 'a1', 'a2']);
    expect(first.next_after).toBe('a2');
    const second = (await h.app.inject({ url: `/api/datasets/products/records?limit=4&after=${first.next_after}` })).json();
    expect(second.records.map((r: { id: string }) => r.id)).toEqual(['a3', 'a4', 'b1']);
    expect(second.next_after).toBeNull();
  });

  it('rejects bad input with clear errors and stores nothing of it', async () => {
    await createDataset('products');
    const notObject = await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: [1, 2] });
    expect(notObject.statusCode).toBe(400);
    expect(notObject.json().error).toMatchObject({ code: 'RECORD_INVALID', message: expect.stringContaining('"p1"') });
    const badItem = await bulk('products', [{ id: 'ok' }, 'text']);
    expect(badItem.json().error).toMatchObject({ code: 'RECORD_INVALID', message: expect.stringContaining('record 2') });
    const badLine = await bulk('products', '{"id": "x1"}\n{"id": "x2"}\n{"id": "x3", oops}\n');
    expect(badLine.statusCode).toBe(400);
    expect(badLine.json().error.message).toMatch(/^line 3: not valid JSON/);
    const scalarLine = await bulk('products', '{"id": "x1"}\n42\n');
    expect(scalarLine.json().error.message).toBe('line 2: the record is not a JSON object');
    const notList = await h.app.inject({ method: 'POST', url: '/api/datasets/products/records:bulk', payload: { id: 'x' } });
    expect(notList.json().error.code).toBe('REQUEST_INVALID');
    const tooBig = await bulk('products', Array.from({ length: 2000 }, (_, i) => ({ id: `big${i}`, text: 'x'.repeat(100) })));
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await h.app.inject({ url: '/api/datasets/products' })).json().records).toBe(0);
  });

  it('answers 404 for an unknown dataset and 400 for a bad name', async () => {
    for (const req of [
      { url: '/api/datasets/ghost' },
      { url: '/api/datasets/ghost/records' },
      { url: '/api/datasets/ghost/records/x' },
      { method: 'PUT' as const, url: '/api/datasets/ghost/records/x', payload: { a: 1 } },
      { method: 'POST' as const, url: '/api/datasets/ghost/records:bulk', payload: [{ id: 'x' }] },
    ]) {
      const res = await h.app.inject(req);
      expect(res.statusCode, req.url).toBe(404);
      expect(res.json().error.code).toBe('DATASET_NOT_FOUND');
    }
    expect((await createDataset('Bad_Name')).statusCode).toBe(400);
    expect((await createDataset('products', { ingest_pipeline: 'missing' })).json().error.code).toBe('PIPELINE_NOT_FOUND');
  });

  it('passes every written record through the ingest pipeline and stores the output of its last step', async () => {
    expect((await h.app.inject({ method: 'PUT', url: '/api/pipelines/clean', headers: YAML, payload: INGEST_YAML })).statusCode).toBe(201);
    expect((await createDataset('products', { ingest_pipeline: 'clean' })).json().ingest_pipeline).toBe('clean');
    const put = await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { title: '  lamp  ' } });
    expect(put.json().data).toEqual({ title: 'lamp', label: 'LAMP' });
    const written = await bulk('products', '{"id": "p2", "title": " desk"}\n{"id": "p3", "title": "chair "}\n');
    expect(written.json()).toEqual({ written: 2 });
    expect((await h.app.inject({ url: '/api/datasets/products/records/p3' })).json().data).toEqual({ id: 'p3', title: 'chair', label: 'CHAIR' });
    // No run is persisted by ingest.
    expect(await h.engine.store.listRuns({ limit: 10 })).toEqual([]);
  });

  it('rejects the whole write with 422 INGEST_FAILED naming the step when the ingest pipeline fails', async () => {
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/clean', headers: YAML, payload: INGEST_YAML });
    await createDataset('products', { ingest_pipeline: 'clean' });
    const one = await h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', payload: { name: 'no title' } });
    expect(one.statusCode).toBe(422);
    expect(one.json().error).toMatchObject({ code: 'INGEST_FAILED', details: { pipeline: 'clean', step: 'trim', record: 'p1' } });
    expect(one.json().error.message).toContain('title is missing');
    const many = await bulk('products', [{ id: 'ok1', title: 'fine' }, { id: 'bad' }, { id: 'ok2', title: 'fine' }]);
    expect(many.statusCode).toBe(422);
    expect(many.json().error.details).toMatchObject({ step: 'trim', record: 'bad' });
    expect((await h.app.inject({ url: '/api/datasets/products' })).json().records).toBe(0);
  });

  it('needs admin to configure a dataset, operator to write records, viewer to read; publishes the routes', async () => {
    await h.close();
    h = await startHarness({}, { worker: false, auth: 'on' });
    const token = async (role: 'admin' | 'operator' | 'viewer') => ({ authorization: `Bearer ${(await createApiToken(h.engine.store, role, null)).token}` });
    const [admin, operator, viewer] = [await token('admin'), await token('operator'), await token('viewer')];
    const create = (headers: Record<string, string>) => h.app.inject({ method: 'PUT', url: '/api/datasets/products', headers, payload: {} });
    expect((await create(operator)).statusCode).toBe(403);
    expect((await create(admin)).statusCode).toBe(201);
    expect((await create(admin)).statusCode).toBe(200);
    const write = (headers: Record<string, string>) => h.app.inject({ method: 'PUT', url: '/api/datasets/products/records/p1', headers, payload: { a: 1 } });
    expect((await write(viewer)).statusCode).toBe(403);
    expect((await write(operator)).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/api/datasets/products/records/p1', headers: viewer })).statusCode).toBe(200);
    const doc = (await h.app.inject({ url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/datasets/{name}', '/api/datasets/{name}/records/{id}', '/api/datasets/{name}/records:bulk']));
  });
});
