import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/core/errors.js';
import { toHttpError } from '../../src/server/http-errors.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe('request errors name the offending property', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(taskFunctions, { worker: false });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterAll(async () => h.close());

  async function refused(method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown): Promise<string> {
    const res = await h.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as string }) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('REQUEST_INVALID');
    return res.json().error.message as string;
  }

  it.each([
    ['an unknown body property', 'POST', '/api/pipelines/tasks/runs', { input: {}, foo: 1 }, "body has unknown property 'foo'"],
    ['a missing body property', 'POST', '/api/runs/r1/rollback', {}, "body is missing required property 'to'"],
    ['a value outside an enum', 'POST', '/api/runs/r1/steps/a/approval', { decision: 'maybe' }, 'body.decision must be one of "approve", "reject"'],
    ['a wrong type', 'POST', '/api/pipelines/tasks/runs', { priority: 'high' }, 'body.priority must be integer'],
    ['a nested unknown property', 'PUT', '/api/pipelines/tasks/evals', { evals: [{ desired_output: 1, colour: 'red' }] }, "body.evals[0] has unknown property 'colour'"],
    ['an unknown query parameter', 'GET', '/api/runs?bogus=1', undefined, "the query string has unknown query parameter 'bogus'"],
    ['a query parameter out of range', 'GET', '/api/runs?limit=5000', undefined, "query parameter 'limit' must be <= 1000"],
    ['a bad URL parameter', 'GET', '/api/pipelines/Bad!Name', undefined, "URL parameter 'name' must match pattern"],
  ] as const)('%s', async (_what, method, url, payload, message) => {
    expect(await refused(method, url, payload)).toContain(message);
  });

  it('maps SluiceErrors to statuses by code, also those made by another copy of the library', () => {
    expect(toHttpError(new SluiceError('FORBIDDEN', 'needs admin'))).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN', message: 'needs admin' } } });
    expect(toHttpError(new SluiceError('REQUEST_INVALID', 'bad'))).toMatchObject({ status: 400 });
    // Not an instance of this module's SluiceError, but one by its brand, as another copy of the package makes it.
    const foreign = Object.assign(new Error('no run r9'), { name: 'SluiceError', code: 'RUN_NOT_FOUND', retryable: false, [Symbol.for('sluice.error')]: true });
    expect(toHttpError(foreign)).toMatchObject({ status: 404, body: { error: { code: 'RUN_NOT_FOUND', message: 'no run r9' } } });
    expect(toHttpError(new Error('oops'))).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL' } } });
  });
});
