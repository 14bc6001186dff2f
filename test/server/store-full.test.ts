/** A store that cannot write: a full SQLite file answers 507 STORE_FULL, and the same request works once there is room. */
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { toHttpError } from '../../src/server/http-errors.js';
import { startHarness, TASK_YAML, taskFunctions, type Harness } from './server-harness.js';

describe('a full store', () => {
  let h: Harness | undefined;
  afterEach(async () => h?.close());

  it('answers 507 STORE_FULL while the SQLite file cannot grow, loses nothing, and takes the same request once it can', async () => {
    h = await startHarness(taskFunctions);
    const put = await h.app.inject({ method: 'PUT', url: '/api/pipelines/tasks', headers: { 'content-type': 'application/yaml' }, payload: TASK_YAML });
    expect(put.statusCode).toBe(201);
    const before = await h.app.inject({ method: 'POST', url: '/api/pipelines/tasks/runs', payload: { input: { title: 'before' } } });
    expect(before.statusCode).toBe(201);
    await h.engine.waitForRun(before.json().id as string, { pollMs: 20 });

    // The store's own connection may not grow the file past its size now: SQLite answers SQLITE_FULL, as on a full disk.
    const db = (h.engine.store as unknown as { db: Database.Database }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const request = { method: 'POST' as const, url: '/api/pipelines/tasks/runs', payload: { input: { title: 'x'.repeat(100_000) } } };
    const full = await h.app.inject(request);
    expect(full.statusCode).toBe(507);
    expect(full.json().error).toMatchObject({ code: 'STORE_FULL', message: expect.stringContaining('database or disk is full') });
    expect((await h.app.inject({ url: `/api/runs/${before.json().id as string}` })).json()).toMatchObject({ status: 'succeeded' });

    db.pragma('max_page_count = 1073741823');
    const again = await h.app.inject(request);
    expect(again.statusCode).toBe(201);
    expect((await h.engine.waitForRun(again.json().id as string, { pollMs: 20 })).status).toBe('succeeded');
  });

  it('maps PostgreSQL disk_full (SQLSTATE 53100) to the same 507 STORE_FULL', () => {
    // The shape pg gives a server error; filling a real PostgreSQL disk is out of reach of a test.
    const diskFull = Object.assign(new Error('could not extend file "base/16384/16385": No space left on device'), { code: '53100' });
    expect(toHttpError(diskFull)).toMatchObject({ status: 507, body: { error: { code: 'STORE_FULL' } } });
  });
});
