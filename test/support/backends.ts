import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from './postgres.js';
import { sqliteTemplate } from './sqlite-template.js';

/** A store backend the contract suite runs against. */
export interface Backend {
  name: string;
  /** A fresh, migrated, empty store. */
  create(): Promise<Store>;
  /** Removes whatever create() made. */
  cleanup(): Promise<void>;
  /** A new store on the same database as `store` (made by create()), as another process would open it. */
  reopen(store: Store): Promise<Store>;
}

/** SQLite on a real file in a temp folder: a copy of the file the global setup migrated once for the run. */
export function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
      dirs.push(dir);
      const path = join(dir, 'sluice.db');
      copyFileSync(sqliteTemplate(), path);
      const store = new SqliteStore({ path });
      // Finds every migration applied (the copy's ledger), as on a store opened again.
      await store.migrate();
      return store;
    },
    async cleanup() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
    async reopen(store) {
      const again = new SqliteStore({ path: store.url.replace(/^sqlite:/, '') });
      await again.migrate();
      return again;
    },
  };
}

/**
 * PostgreSQL: the test run's server (see ./postgres.ts), a fresh clone of the migrated template per store (its
 * migrate() finds nothing to do). Stores are closed and databases dropped by cleanup().
 */
export function postgresBackend(): Backend {
  let server: ReturnType<typeof acquirePostgres> | null = null;
  const stores: Store[] = [];
  const drops: Array<() => Promise<void>> = [];
  const urls = new Map<Store, string>();
  return {
    name: 'postgres',
    async create() {
      server ??= acquirePostgres();
      const db = await createDatabase(await server);
      drops.push(db.drop);
      const store = new PostgresStore({ url: db.url, poolSize: 4 });
      stores.push(store);
      urls.set(store, db.url);
      await store.migrate();
      return store;
    },
    async cleanup() {
      // Closing twice is harmless for callers that already closed their store.
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
      for (const drop of drops.splice(0)) await drop().catch(() => undefined);
      if (server) await releasePostgres();
      server = null;
    },
    async reopen(store) {
      const url = urls.get(store);
      if (!url) throw new Error('reopen: this store was not made by this backend');
      const again = new PostgresStore({ url, poolSize: 4 });
      stores.push(again);
      urls.set(again, url);
      await again.migrate();
      return again;
    },
  };
}

/** Every backend: SQLite, and PostgreSQL unless SLUICE_TEST_POSTGRES=off. */
export function backends(): Backend[] {
  return postgresDisabled() ? [sqliteBackend()] : [sqliteBackend(), postgresBackend()];
}
