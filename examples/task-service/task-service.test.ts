/**
 * Job 2 end to end over HTTP: the page is served, a task is started with an idempotency key, its run is
 * followed over SSE until it succeeds, and the generated prompts are read back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killSpawned, startCli, waitFor } from '../../test/support/cli.js';
import { startTaskService, type TaskService } from './server.js';

/** Reads SSE event types of one stream until `last` arrives. */
function followRun(url: string, last: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const types: string[] = [];
    const t = setTimeout(() => reject(new Error(`timed out after ${types.join(' ')}`)), 20_000);
    const req = get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const m of chunk.matchAll(/^event: (\S+)$/gm)) types.push(m[1]!);
        if (types.includes(last)) {
          clearTimeout(t);
          req.destroy();
          resolve(types);
        }
      });
    });
    req.on('error', () => undefined);
  });
}

describe('example: task service', () => {
  let dir: string;
  let service: TaskService;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-task-service-'));
    service = await startTaskService({ store: `sqlite:${join(dir, 's.db')}`, port: 0 });
  });
  afterEach(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, starts a task idempotently and follows it live to its prompts', async () => {
    const page = await fetch(`${service.address}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('new EventSource(');

    const start = () =>
      fetch(`${service.address}/api/pipelines/task-service/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: { title: 'user registration', stack: ['TypeScript', 'Fastify'] }, idempotency_key: 'task:user registration' }),
      });
    const first = await start();
    expect(first.status).toBe(201);
    const run = (await first.json()) as { id: string };
    // The confirmation may come before the run waits for it: events are kept for the wait's lookback.
    const confirm = await fetch(`${service.address}/api/events/task.confirmed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'user registration', by: 'ana' }),
    });
    expect(confirm.status).toBe(200);
    const types = await followRun(`${service.address}/api/stream?run=${run.id}`, 'run.succeeded');
    expect(types[0]).toBe('run.queued');
    expect(types.filter((t) => t === 'step.succeeded')).toHaveLength(4);

    const again = await start();
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(run.id);

    const done = (await (await fetch(`${service.address}/api/runs/${run.id}`)).json()) as { status: string; steps: Array<{ name: string; output: any }> };
    expect(done.status).toBe('succeeded');
    expect(done.steps.find((s) => s.name === 'confirmed')!.output).toEqual({ title: 'user registration', by: 'ana' });
    const prompts = done.steps.find((s) => s.name === 'prompts')!.output.prompts as string[];
    expect(prompts).toHaveLength(4);
    expect(prompts[2]).toContain('HTTP API for user registration');
    expect(prompts[2]).toContain('Stack: TypeScript, Fastify');
    expect(prompts[3]).toContain('Builds on t3');
  });

  it('answers bad input with a 4xx and a code', async () => {
    const bad = await fetch(`${service.address}/api/pipelines/task-service/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { title: 'x' } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INPUT_INVALID');
  });
});

describe('example: task service served by sluice serve --load', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-task-serve-'));
  });
  afterEach(async () => {
    await killSpawned();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers the typed pipeline of pipelines.ts and runs a task over the API (needs dist/)', async () => {
    const serve = startCli(['--store', `sqlite:${join(dir, 's.db')}`, 'serve', '--port', '0', '--load', 'examples/task-service/pipelines.ts']);
    let stderr = '';
    serve.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const address = await waitFor('sluice serve to listen', () => /sluice serve on (http:\/\/\S+)/.exec(stderr)?.[1], 60_000);
    expect(stderr).toContain('loaded task-service from examples/task-service/pipelines.ts');
    const started = await fetch(`${address}/api/pipelines/task-service/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { title: 'search', stack: ['Go'] } }),
    });
    expect(started.status).toBe(201);
    const { id } = (await started.json()) as { id: string };
    await fetch(`${address}/api/events/task.confirmed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'search' }) });
    const done = await waitFor('the run to succeed', async () => {
      const run = (await (await fetch(`${address}/api/runs/${id}`)).json()) as { status: string; steps: Array<{ name: string; output: any }> };
      return run.status === 'succeeded' ? run : undefined;
    });
    expect(done.steps.find((s) => s.name === 'prompts')!.output.prompts[1]).toContain('Service layer for search. Stack: Go.');
  });
});

