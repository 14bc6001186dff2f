import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { START_RUNS_SQL } from '../../src/store/sqlite/attempt-batches.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe('a batch claim starting its runs', () => {
  it('on SQLite, finds each run by its id, not by walking every queued run through the status index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-claim-plan-'));
    const store = new SqliteStore({ path: join(dir, 'sluice.db') });
    await store.migrate();
    await store.close();
    const db = new Database(join(dir, 'sluice.db'), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${START_RUNS_SQL}`).all({ now: Date.now(), ids: '["a","b"]' }) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('; ');
      expect(plan).toMatch(/SEARCH runs USING INDEX sqlite_autoindex_runs_1 \(id=\?\)/);
      expect(plan).not.toMatch(/runs_by_status_created/);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
