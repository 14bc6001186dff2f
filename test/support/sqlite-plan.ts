/** The query plan SQLite gives a statement on a freshly migrated store (no statistics), as one string. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/** Migrates a store in a temporary folder, runs `use` with EXPLAIN QUERY PLAN over it, then removes the folder. */
export async function withSqlitePlans<T>(use: (plan: (text: string, args: unknown) => string) => T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-plan-'));
  const store = new SqliteStore({ path: join(dir, 'sluice.db') });
  await store.migrate();
  await store.close();
  const db = new Database(join(dir, 'sluice.db'), { readonly: true });
  try {
    return use((text, args) => (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(args as never) as Array<{ detail: string }>).map((r) => r.detail).join('; '));
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
