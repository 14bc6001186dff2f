import Database from 'better-sqlite3';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiToken, hashToken } from '../../src/server/auth.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

/** The status of a streaming GET, read from the response head; the connection is then dropped. */
function streamStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', (err) => (err.message.includes('socket hang up') ? undefined : reject(err)));
  });
}

describe('auth', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('enforces viewer < operator < admin on /api routes and leaves operations open', async () => {
    h = await startHarness(taskFunctions, { auth: 'on' });
    const store = h.engine.store;
    const admin = (await createApiToken(store, 'admin', 'ci')).token;
    const operator = (await createApiToken(store, 'operator', null)).token;
    const viewer = (await createApiToken(store, 'viewer', null)).token;
    const put = (token: string) => h!.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml', ...bearer(token) }, payload: TASK_YAML });
    const start = (token: string) => h!.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', headers: bearer(token), payload: { input: { title: 'x' } } });

    expect((await put(viewer)).json().error.code).toBe('FORBIDDEN');
    expect((await put(operator)).statusCode).toBe(403);
    expect((await put(admin)).statusCode).toBe(201);
    expect((await start(viewer)).statusCode).toBe(403);
    expect((await start(operator)).statusCode).toBe(201);
    expect((await h.app.inject({ url: '/api/runs', headers: bearer(viewer) })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'POST', url: '/api/events/task.created', headers: bearer(operator), payload: { title: 'e' } })).statusCode).toBe(201);
    expect((await h.app.inject({ method: 'DELETE', url: '/api/pipelines/tasks', headers: bearer(operator) })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/simulate', headers: bearer(operator), payload: { inputs: [{ title: 'a' }] } })).statusCode).toBe(403);

    for (const disguised of ['/%61pi/runs', '/api//runs', '/api/runs/', '/%61pi/pipelines/tasks', '/%61pi/pipelines/%74asks']) expect([401, 404]).toContain((await h.app.inject({ url: disguised })).statusCode);
    expect((await h.app.inject({ url: '/%61pi/runs' })).statusCode).toBe(401);
    const missing = await h.app.inject({ url: '/api/runs' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('UNAUTHORIZED');
    expect((await h.app.inject({ url: '/api/runs', headers: bearer('sluice_forged') })).json().error.code).toBe('UNAUTHORIZED');
    const expired = (await createApiToken(store, 'admin', 'old', Date.now() - 120_000, Date.now() - 60_000)).token;
    const refused = await h.app.inject({ url: '/api/runs', headers: bearer(expired) });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error).toMatchObject({ code: 'TOKEN_EXPIRED', message: expect.stringContaining('expired') });
    const fresh = (await createApiToken(store, 'viewer', 'new', Date.now(), Date.now() + 60_000)).token;
    expect((await h.app.inject({ url: '/api/runs', headers: bearer(fresh) })).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/api/runs', headers: { authorization: 'Basic abc' } })).statusCode).toBe(401);
    const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    expect(await streamStatus(`${base}/api/stream?token=${viewer}`)).toBe(200);
    expect(await streamStatus(`${base}/api/stream`)).toBe(401);
    expect(await streamStatus(`${base}/api/stream?token=nope`)).toBe(401);
    await expect(h.app.injectWS('/api/ws')).rejects.toThrow();
    const ws = await h.app.injectWS(`/api/ws?token=${viewer}`);
    ws.terminate();
    const minted = await h.app.inject({ method: 'POST', url: '/api/tokens', headers: bearer(admin), payload: { role: 'operator', name: 'bot' } });
    expect(minted.statusCode).toBe(201);
    expect((await start(minted.json().token)).statusCode).toBe(201);
    expect((await h.app.inject({ method: 'POST', url: '/api/tokens', headers: bearer(operator), payload: { role: 'admin' } })).statusCode).toBe(403);
    for (const open of ['/healthz', '/readyz', '/metrics', '/openapi.json']) expect((await h.app.inject({ url: open })).statusCode).toBe(200);
  });

  it('stores only the sha256 of a token', async () => {
    h = await startHarness(taskFunctions, { auth: 'on' });
    const { token, record } = await createApiToken(h.engine.store, 'viewer', 'dash');
    expect(record.hash).toBe(hashToken(token));
    const db = new Database(join(h.dir, 'sluice.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM api_tokens').all() as Array<Record<string, unknown>>;
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(token);
      expect(rows[0]!['hash']).toBe(hashToken(token));
    } finally {
      db.close();
    }
  });

  it('auto mode is open without tokens and turns on once a token exists', async () => {
    h = await startHarness(taskFunctions, { auth: 'auto' });
    const before = await h.app.inject({ url: '/api/runs' });
    expect(before.statusCode).toBe(200);
    await createApiToken(h.engine.store, 'viewer', null);
    // The "no tokens" answer is cached for 2 s.
    await new Promise((r) => setTimeout(r, 2100));
    expect((await h.app.inject({ url: '/api/runs' })).statusCode).toBe(401);
  });
});
