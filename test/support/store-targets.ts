/**
 * Store URLs for in-process CLI tests: a SQLite file in the test's folder, and a fresh database on the test
 * PostgreSQL server (left out when `SLUICE_TEST_POSTGRES=off`). `cleanup` drops what `url` made.
 */
import { join } from 'node:path';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from './postgres.js';

export interface StoreTarget {
  name: string;
  url(dir: string): Promise<string>;
  cleanup(): Promise<void>;
}

export function storeTargets(): StoreTarget[] {
  const sqlite: StoreTarget = { name: 'sqlite', url: async (dir) => `sqlite:${join(dir, 's.db')}`, cleanup: async () => undefined };
  const drops: Array<() => Promise<void>> = [];
  let acquired = false;
  const postgres: StoreTarget = {
    name: 'postgres',
    async url() {
      acquired = true;
      const db = await createDatabase(await acquirePostgres());
      drops.push(db.drop);
      return db.url;
    },
    async cleanup() {
      for (const drop of drops.splice(0)) await drop().catch(() => undefined);
      if (acquired) await releasePostgres();
    },
  };
  return postgresDisabled() ? [sqlite] : [sqlite, postgres];
}
