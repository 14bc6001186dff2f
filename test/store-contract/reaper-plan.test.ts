import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { OVERDUE_RUNS } from '../../src/store/ledger/upkeep.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe("the reaper's scan for overdue runs", () => {
  it('on SQLite, reads the partial deadline index, not every live run by status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-reaper-plan-'));
    const store = new SqliteStore({ path: join(dir, 'sluice.db') });
    await store.migrate();
    await store.close();
    const db = new Database(join(dir, 'sluice.db'), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${OVERDUE_RUNS.sqlite}`).all(OVERDUE_RUNS.sqliteArgs([Date.now()])) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('; ');
      expect(plan).toMatch(/USING INDEX runs_deadline/);
      expect(plan).not.toMatch(/runs_by_status_created/);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
