import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

/** What the dashboard needs from the server: /api/me, the static app with SPA fallback, stats per bucket. */
describe('dashboard routes', () => {
  let h: Harness | undefined;
  let web: string | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
    if (web) rmSync(web, { recursive: true, force: true });
    web = undefined;
  });

  function fakeBuild(): string {
    web = mkdtempSync(join(tmpdir(), 'sluice-web-build-'));
    mkdirSync(join(web, 'assets'));
    writeFileSync(join(web, 'index.html'), '<!doctype html><div id="root"></div><script src="/assets/app-abc123.js"></script>');
    writeFileSync(join(web, 'assets', 'app-abc123.js'), 'console.log(1)');
    writeFileSync(join(web, 'favicon.svg'), '<svg/>');
    return web;
  }

  it('GET /api/me: admin without auth, else the role and name of the token', async () => {
    h = await startHarness({}, { webRoot: false });
    expect((await h.app.inject({ url: '/api/me' })).json()).toEqual({ role: 'admin', name: null, auth: false });
    const viewer = (await createApiToken(h.engine.store, 'viewer', 'alice')).token;
    const operator = (await createApiToken(h.engine.store, 'operator', null)).token;
    await new Promise((r) => setTimeout(r, 2100)); // the auth switch is cached for 2 s
    expect((await h.app.inject({ url: '/api/me' })).statusCode).toBe(401);
    expect((await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${viewer}` } })).json()).toEqual({ role: 'viewer', name: 'alice', auth: true });
    expect((await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${operator}` } })).json()).toMatchObject({ role: 'operator', auth: true });
  });

  it('serves the built app: files with types and caching, index.html for client routes, never for API paths', async () => {
    h = await startHarness({}, { webRoot: fakeBuild(), auth: 'on' });
    const root = await h.app.inject({ url: '/' });
    expect(root.statusCode).toBe(200);
    expect(root.headers['content-type']).toContain('text/html');
    expect(root.headers['cache-control']).toBe('no-cache');
    const deep = await h.app.inject({ url: '/runs/r123?step=a' });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toContain('<div id="root">');
    const asset = await h.app.inject({ url: '/assets/app-abc123.js' });
    expect(asset.headers['content-type']).toContain('text/javascript');
    expect(asset.headers['cache-control']).toContain('immutable');
    expect((await h.app.inject({ url: '/favicon.svg' })).headers['content-type']).toBe('image/svg+xml');
    expect((await h.app.inject({ url: '/assets/missing.js' })).statusCode).toBe(404);
    // A path escaping the build folder never reads outside it (it is a client route like any other).
    expect((await h.app.inject({ url: '/assets/..%2f..%2f..%2fetc/hostname' })).body).toContain('<div id="root">');
    for (const url of ['/api/nothing', '/api', '/metricsx/../api/x']) {
      const res = await h.app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('ROUTE_NOT_FOUND');
    }
    // Static files need no token; the API still does.
    expect((await h.app.inject({ url: '/api/runs' })).statusCode).toBe(401);
    expect((await h.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('says how to build the dashboard when it is missing', async () => {
    web = mkdtempSync(join(tmpdir(), 'sluice-web-empty-'));
    h = await startHarness({}, { webRoot: web });
    const res = await h.app.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build:web');
  });

  it('GET /api/pipelines/:name/stats?buckets= adds the series', async () => {
    h = await startHarness(taskFunctions, { webRoot: false });
    await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
    const run = (await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'a b' } } })).json();
    await h.engine.waitForRun(run.id);
    const since = Date.now() - 3600_000;
    const stats = (await h.app.inject({ url: `/api/pipelines/tasks/stats?since=${since}&buckets=6` })).json();
    expect(stats.series).toHaveLength(6);
    expect(stats.series.at(-1).by_status).toEqual({ succeeded: 1 });
    expect((await h.app.inject({ url: '/api/pipelines/tasks/stats' })).json().series).toBeUndefined();
    expect((await h.app.inject({ url: '/api/pipelines/tasks/stats?buckets=0' })).statusCode).toBe(400);
    expect((await h.app.inject({ url: `/api/pipelines/tasks/stats?since=${Date.now() + 60_000}&buckets=2` })).json().error.code).toBe('REQUEST_INVALID');
  });
});
