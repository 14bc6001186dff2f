import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readJsonlFile } from '../../src/datasets/jsonl.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

/** JSON text of `{"a": {"a": ... {"a": 1}}}` nested `depth` objects deep, built without recursion. */
function deepJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('hostile request values get a 400 naming what is wrong', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { worker: false });
    const put = await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
    expect(put.statusCode).toBe(201);
    expect((await h.app.inject({ method: 'PUT', url: '/api/datasets/docs', payload: {} })).statusCode).toBeLessThan(300);
  });
  afterEach(async () => h.close());

  const startRun = (payload: string) => h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', headers: JSON_HEADERS, payload });

  it('refuses a run input nested 5,000 deep, naming the limit and the path', async () => {
    const res = await startRun(`{"input": {"title": "x", "a": ${deepJson(5000)}}}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('REQUEST_INVALID');
    expect(res.json().error.message).toMatch(/nested deeper than 256 levels at input\.a\.a\.a.*\.\.\. \(256 levels\)/);
    expect((await h.engine.store.listRuns({ limit: 10 })).length).toBe(0);
  });

  it('accepts a run input nested within the limit', async () => {
    const res = await startRun(`{"input": {"title": "x", "a": ${deepJson(200)}}}`);
    expect(res.statusCode).toBe(201);
  });

  it('refuses a dataset record nested 5,000 deep, over PUT and in a JSONL bulk body, storing nothing', async () => {
    const put = await h.app.inject({ method: 'PUT', url: '/api/datasets/docs/records/r1', headers: JSON_HEADERS, payload: deepJson(5000) });
    expect(put.statusCode).toBe(400);
    expect(put.json().error.message).toMatch(/nested deeper than 256 levels at a\.a\.a/);
    const bulk = await h.app.inject({
      method: 'POST',
      url: '/api/datasets/docs/records:bulk',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `{"id": "ok"}\n{"id": "deep", "a": ${deepJson(5000)}}\n`,
    });
    expect(bulk.statusCode).toBe(400);
    expect(bulk.json().error).toMatchObject({ code: 'RECORD_INVALID' });
    expect(bulk.json().error.message).toMatch(/^line 2: the record is nested deeper than 256 levels at data\.a\.a/);
    expect(await h.engine.store.countRecords('docs')).toBe(0);
  });

  it('refuses a __proto__ key with a message that says so, not "not valid JSON"', async () => {
    const res = await startRun('{"input": {"title": "x", "__proto__": {"admin": true}}}');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('REQUEST_INVALID');
    expect(res.json().error.message).toContain('"__proto__" key');
    expect(res.json().error.message).not.toContain('not valid JSON');
  });

  it('refuses a run_at beyond the range of dates, or not a date, naming run_at', async () => {
    for (const runAt of [8.64e15 + 1, 1e300, '+275760-09-13T00:00:00.001Z', 'tomorrow']) {
      const res = await startRun(JSON.stringify({ input: { title: 'x' }, run_at: runAt }));
      expect(res.statusCode, String(runAt)).toBe(400);
      expect(res.json().error.code).toBe('REQUEST_INVALID');
      expect(res.json().error.message).toContain('run_at');
    }
    expect((await h.engine.store.listRuns({ limit: 10 })).length).toBe(0);
  });

  it('refuses a priority outside the 32-bit range or not an integer, naming priority and the range', async () => {
    for (const priority of ['1e308', '2147483648', '-2147483649', '1.5']) {
      const res = await startRun(`{"input": {"title": "x"}, "priority": ${priority}}`);
      expect(res.statusCode, priority).toBe(400);
      expect(res.json().error.code).toBe('REQUEST_INVALID');
      expect(res.json().error.message).toMatch(/priority/);
    }
    const ok = await startRun('{"input": {"title": "x"}, "priority": 2147483647}');
    expect(ok.statusCode).toBe(201);
  });
});

describe('dataset import of a JSONL file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-jsonl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a record nested 5,000 deep by line, as RECORD_INVALID', async () => {
    const file = join(dir, 'deep.jsonl');
    writeFileSync(file, `{"id": "a"}\n{"id": "b", "a": ${deepJson(5000)}}\n`);
    const read = async () => {
      for await (const _ of readJsonlFile(file));
    };
    await expect(read()).rejects.toMatchObject({ code: 'RECORD_INVALID', message: expect.stringMatching(/^line 2: the record is nested deeper than 256 levels at data\.a/) });
  });
});

describe('numbers out of the stores range in other routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { worker: false });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterEach(async () => h.close());

  it('answers 400 naming the field for an event id beyond the safe integers', async () => {
    const run = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x' } } });
    const res = await h.app.inject({ url: `/api/runs/${run.json().id}/events?after=1e308` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'REQUEST_INVALID', message: expect.stringContaining('after') });
  });
});

describe('the library refuses run options the store cannot hold', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { worker: false });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterEach(async () => h.close());

  it('names priority and runAt, and creates nothing', async () => {
    const input = { title: 'x' };
    await expect(h.engine.startRun('tasks', { input, priority: 1e308 })).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringMatching(/^priority must be an integer from -2147483648 to 2147483647/) });
    await expect(h.engine.startRun('tasks', { input, priority: 0.5 })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    await expect(h.engine.startRun('tasks', { input, runAt: Number.NaN })).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringMatching(/^runAt must be/) });
    await expect(h.engine.startRun('tasks', { input, runAt: 9e15 })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    expect(await h.engine.store.listRuns({ limit: 10 })).toHaveLength(0);
  });
});

describe('pipeline definitions nested thousands deep', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { worker: false });
  });
  afterEach(async () => h.close());

  it('are a validation error naming the line, as YAML and as JSON, and the server keeps answering', async () => {
    const deep = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
    const yaml = `name: d\nsteps:\n  a:\n    uses: command\n    with: { run: "x", extra: ${deep} }\n`;
    const json = JSON.stringify({ name: 'd', steps: { a: { uses: 'command', with: { run: 'x' } } } }).replace('"x"', `"x", "extra": ${deep}`);
    for (const [type, payload] of [['application/yaml', yaml], ['application/json', json]] as const) {
      const res = await h.app.inject({ method: 'PUT', url: '/api/pipelines/d', headers: { 'content-type': type }, payload });
      expect(res.statusCode, type).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.details[0]).toMatchObject({ line: type === 'application/yaml' ? 5 : 1, message: 'nested deeper than 256 levels of [ ] or { }' });
    }
    expect((await h.app.inject({ url: '/api/pipelines' })).statusCode).toBe(200);
  });
});
