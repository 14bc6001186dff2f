import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';

/** A store backend the contract suite runs against. */
export interface Backend {
  name: string;
  /** A fresh, migrated, empty store. */
  create(): Promise<Store>;
  /** Removes whatever create() made. */
  cleanup(): Promise<void>;
}

/** SQLite on a real file in a temp folder. */
export function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
      dirs.push(dir);
      const store = new SqliteStore({ path: join(dir, 'sluice.db') });
      await store.migrate();
      return store;
    },
    async cleanup() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** Every backend available here; PostgreSQL joins this list when its store exists. */
export function backends(): Backend[] {
  return [sqliteBackend()];
}
