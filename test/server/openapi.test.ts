import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../src/server/openapi-document.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

type Doc = { paths: Record<string, Record<string, Operation>>; components?: Record<string, unknown> };
type Operation = { operationId?: string; summary?: string; responses?: Record<string, { description?: string; content?: Record<string, { schema?: Record<string, unknown> }> }> };

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

function operations(doc: Doc): Array<{ method: string; path: string; op: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ method, path, op })));
}

describe('the OpenAPI document', () => {
  let doc: Doc;
  let h: Harness;
  beforeAll(async () => {
    doc = (await buildOpenApiDocument()) as unknown as Doc;
    h = await startHarness(taskFunctions);
  });
  afterAll(async () => h.close());

  it('lints clean with the recommended rules of @redocly/openapi-core', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: 'openapi.json', config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`)).toEqual([]);
  });

  it('gives every operation an operationId, a summary, a success with a schema and the error envelope for each error status', () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThanOrEqual(47);
    const problems: string[] = [];
    for (const { method, path, op } of ops) {
      const at = `${method.toUpperCase()} ${path}`;
      if (!op.operationId) problems.push(`${at}: no operationId`);
      if (!op.summary) problems.push(`${at}: no summary`);
      const statuses = Object.keys(op.responses ?? {});
      const successes = statuses.filter((s) => /^[12]/.test(s));
      if (successes.length === 0) problems.push(`${at}: no success response`);
      for (const s of successes) {
        const r = op.responses![s]!;
        if (r.description === 'Default Response') problems.push(`${at} ${s}: undescribed`);
        if (s !== '101' && !Object.values(r.content ?? {}).some((c) => c.schema && Object.keys(c.schema).length > 0)) problems.push(`${at} ${s}: no schema`);
      }
      for (const s of statuses.filter((x) => /^[45]/.test(x))) {
        const schema = op.responses![s]!.content?.['application/json']?.schema as { $ref?: string } | undefined;
        if (schema?.$ref !== '#/components/schemas/ErrorEnvelope') problems.push(`${at} ${s}: not the error envelope`);
      }
      if (path.startsWith('/api/') && !statuses.includes('401')) problems.push(`${at}: no 401`);
    }
    expect(new Set(ops.map((o) => o.op.operationId)).size).toBe(ops.length);
    expect(problems).toEqual([]);
  });

  it('describes what the routes really answer', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const mismatches: string[] = [];
    async function check(method: string, url: string, route: string, payload?: unknown, headers?: Record<string, string>) {
      const res = await h.app.inject({ method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as string }), ...(headers ? { headers } : {}) });
      const response = doc.paths[route]?.[method.toLowerCase()]?.responses?.[String(res.statusCode)];
      const schema = response?.content?.['application/json']?.schema;
      if (!schema) return void mismatches.push(`${method} ${url}: ${res.statusCode} is not documented`);
      // With the document's components beside it, so that its `#/components/schemas/...` references resolve.
      const validate = ajv.compile({ ...schema, components: doc.components });
      if (!validate(res.json())) mismatches.push(`${method} ${url} ${res.statusCode}: ${ajv.errorsText(validate.errors)}`);
      return res.json() as Record<string, unknown>;
    }
    await check('PUT', '/api/pipelines/tasks', '/api/pipelines/{name}', TASK_YAML, { 'content-type': 'application/yaml' });
    const run = (await check('POST', '/api/pipelines/tasks/runs', '/api/pipelines/{name}/runs', { input: { title: 'write the docs' } }))!;
    await h.engine.waitForRun(run['id'] as string, { pollMs: 20 });
    const id = run['id'] as string;
    await check('GET', '/api/pipelines', '/api/pipelines');
    await check('GET', '/api/pipelines?summary=true', '/api/pipelines');
    await check('GET', '/api/pipelines/tasks', '/api/pipelines/{name}');
    await check('GET', '/api/pipelines/tasks/versions', '/api/pipelines/{name}/versions');
    await check('GET', '/api/pipelines/tasks/graph', '/api/pipelines/{name}/graph');
    await check('POST', '/api/pipelines/tasks/validate', '/api/pipelines/{name}/validate', TASK_YAML, { 'content-type': 'application/yaml' });
    await check('GET', '/api/pipelines/tasks/stats?buckets=3', '/api/pipelines/{name}/stats');
    await check('POST', '/api/pipelines/tasks/simulate', '/api/pipelines/{name}/simulate', { inputs: [{ title: 'a b' }], verbose: true });
    await check('GET', '/api/pipelines/tasks/evals', '/api/pipelines/{name}/evals');
    await check('GET', `/api/runs/${id}`, '/api/runs/{id}');
    await check('GET', '/api/runs', '/api/runs');
    await check('GET', `/api/runs/${id}/events`, '/api/runs/{id}/events');
    await check('GET', `/api/runs/${id}/steps/split/logs`, '/api/runs/{id}/steps/{step}/logs');
    await check('GET', `/api/runs/${id}/decisions`, '/api/runs/{id}/decisions');
    await check('POST', `/api/runs/${id}/resume`, '/api/runs/{id}/resume');
    await check('GET', '/api/runs/nope', '/api/runs/{id}');
    await check('GET', '/api/dead-letters', '/api/dead-letters');
    await check('POST', '/api/events/task.created', '/api/events/{name}', { title: 'x y' });
    await check('PUT', '/api/datasets/things', '/api/datasets/{name}', {});
    await check('PUT', '/api/datasets/things/records/a', '/api/datasets/{name}/records/{id}', { title: 'A' });
    await check('POST', '/api/datasets/things/records:bulk', '/api/datasets/{name}/records:bulk', [{ id: 'b', title: 'B' }]);
    await check('GET', '/api/datasets', '/api/datasets');
    await check('GET', '/api/datasets/things', '/api/datasets/{name}');
    await check('GET', '/api/datasets/things/records', '/api/datasets/{name}/records');
    await check('POST', '/api/datasets/things/records/a/overrides/size', '/api/datasets/{name}/records/{id}/overrides/{field}', { value: 'large' });
    await check('GET', '/api/datasets/things/records/a', '/api/datasets/{name}/records/{id}');
    await check('DELETE', '/api/datasets/things/records/b', '/api/datasets/{name}/records/{id}');
    await check('GET', '/api/me', '/api/me');
    await check('POST', '/api/tokens', '/api/tokens', { role: 'viewer', name: 'ci' });
    await check('GET', '/healthz', '/healthz');
    await check('GET', '/readyz', '/readyz');
    expect(mismatches).toEqual([]);
  });
});
