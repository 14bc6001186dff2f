import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { createServer } from '../../src/server/create-server.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

interface SseEvent {
  id: number;
  type: string;
  data: { run_id: string; type: string };
}

/** A minimal SSE client over a real socket: collects events and comments until closed. */
function openSse(url: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let buffer = '';
  let response: IncomingMessage | undefined;
  const waiters: Array<() => void> = [];
  const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
    response = res;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        if (block.startsWith(':')) comments.push(block.slice(2));
        else events.push({ id: Number(fields['id']), type: fields['event']!, data: JSON.parse(fields['data']!) });
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  req.end();
  return {
    events,
    comments,
    status: () => response?.statusCode,
    until(pred: () => boolean, ms = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out; got ${events.map((e) => `${e.id}:${e.type}`).join(' ')}`)), ms);
        const check = () => {
          if (pred()) {
            clearTimeout(t);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () => req.destroy(),
  };
}

describe('live events and a real listening server', () => {
  let h: Harness;
  let base: string;
  beforeEach(async () => {
    h = await startHarness(taskFunctions, { heartbeatMs: 100 });
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
  });
  afterEach(async () => h.close());

  async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  }

  it('SSE resumes from Last-Event-ID and continues live without gaps or duplicates', async () => {
    const first = await post('/api/pipelines/tasks/runs', { input: { title: 'one two' } });
    await h.engine.waitForRun(first.json.id, { pollMs: 20 });
    const history = await h.engine.store.listEvents({ pipeline: 'tasks' });
    const resumeAfter = history[3]!.id;
    const sse = openSse(`${base}/api/stream?pipeline=tasks`, { 'last-event-id': String(resumeAfter) });
    await sse.until(() => sse.events.length >= history.length - 4);
    const second = await post('/api/pipelines/tasks/runs', { input: { title: 'three' } });
    await sse.until(() => sse.events.some((e) => e.data.run_id === second.json.id && e.type === 'run.succeeded'));
    await sse.until(() => sse.comments.includes('heartbeat'));
    sse.close();
    expect(sse.status()).toBe(200);
    const stored = (await h.engine.store.listEvents({ pipeline: 'tasks', afterId: resumeAfter })).map((e) => e.id);
    expect(sse.events.map((e) => e.id)).toEqual(stored);
    expect(sse.events.every((e) => e.type === e.data.type)).toBe(true);
  });

  it('SSE delivers events of runs worked by another process (polled from the store)', async () => {
    const sse = openSse(`${base}/api/stream`);
    await sse.until(() => sse.comments.includes('connected'));
    const other = new SqliteStore({ path: join(h.dir, 'sluice.db') });
    await other.migrate();
    const engine = new Engine({ store: other, steps: builtinStepTypes({ functions: taskFunctions }), onError: () => {} });
    try {
      engine.startWorker();
      const { run } = await engine.startRun('tasks', { input: { title: 'elsewhere' } });
      await sse.until(() => sse.events.some((e) => e.data.run_id === run.id && e.type === 'run.succeeded'));
      const ids = sse.events.filter((e) => e.data.run_id === run.id).map((e) => e.id);
      expect(ids).toEqual((await other.listEvents({ runId: run.id })).map((e) => e.id));
    } finally {
      sse.close();
      await engine.close();
    }
  });

  it('WebSocket streams one run from its start as JSON messages', async () => {
    const created = await post('/api/pipelines/tasks/runs', { input: { title: 'ws please' } });
    const got: Array<{ id: number; type: string; run_id: string }> = [];
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    const ws = await h.app.injectWS(`/api/ws?run=${created.json.id}`, {}, {
      // Listen before the socket opens, as browsers do, so the replay is not missed.
      onInit: (socket) =>
        socket.on('message', (data: Buffer) => {
          got.push(JSON.parse(data.toString()));
          if (got.at(-1)!.type === 'run.succeeded') done();
        }),
    });
    await Promise.race([finished, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(got)}`)), 10_000))]);
    ws.terminate();
    expect(got[0]!.type).toBe('run.queued');
    expect(got.every((m) => m.run_id === created.json.id)).toBe(true);
    expect(got.map((m) => m.id)).toEqual((await h.engine.store.listEvents({ runId: created.json.id })).map((e) => e.id));
  });

  it('50 concurrent POSTs with one idempotency key create one run and all return it', async () => {
    const body = { input: { title: 'once' }, idempotency_key: 'same-key' };
    const answers = await Promise.all(Array.from({ length: 50 }, () => post('/api/pipelines/tasks/runs', body)));
    const ids = new Set(answers.map((a) => a.json.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(49);
    expect(await h.engine.store.listRuns({ pipeline: 'tasks' })).toHaveLength(1);
  });

  it('answers each of many concurrent creations on its own, even when some are invalid', async () => {
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post('/api/pipelines/tasks/runs', { input: i % 5 === 0 ? { title: i } : { title: `task ${i}` }, idempotency_key: `k${i}` })),
    );
    answers.forEach((a, i) => {
      if (i % 5 === 0) expect(a).toMatchObject({ status: 400, json: { error: { code: 'INPUT_INVALID' } } });
      else expect(a).toMatchObject({ status: 201, json: { idempotency_key: `k${i}`, input: { title: `task ${i}` } } });
    });
    expect(await h.engine.store.listRuns({ pipeline: 'tasks', limit: 100 })).toHaveLength(32);
  });

  it('keeps one run per idempotency key across two server processes on one SQLite file', async () => {
    const other = new SqliteStore({ path: join(h.dir, 'sluice.db') });
    await other.migrate();
    const engine = new Engine({ store: other, steps: builtinStepTypes({ functions: taskFunctions }), onError: () => {} });
    const app = await createServer({ engine });
    try {
      const otherBase = await app.listen({ port: 0, host: '127.0.0.1' });
      const body = JSON.stringify({ input: { title: 'twice' }, idempotency_key: 'shared' });
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          fetch(`${i % 2 === 0 ? base : otherBase}/api/pipelines/tasks/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
            async (r) => ({ status: r.status, id: ((await r.json()) as { id: string }).id }),
          ),
        ),
      );
      expect(new Set(answers.map((a) => a.id)).size).toBe(1);
      expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
      expect(await h.engine.store.listRuns({ pipeline: 'tasks' })).toHaveLength(1);
    } finally {
      await app.close();
      await engine.close();
    }
  });
});
