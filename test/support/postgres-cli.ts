/**
 * For end-to-end tests of `sluice` processes on PostgreSQL: registers the hooks of one describe block that give
 * it a fresh database on the test run's server and a temp folder, kill the processes a test started, and drop
 * both at the end. The database is a clone of the migrated template unless `empty` is set (for tests of
 * `sluice migrate` itself).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { killSpawned, REPO_ROOT, tempDir } from './cli.js';
import { acquirePostgres, createDatabase, releasePostgres } from './postgres.js';

export interface PostgresCliFixture {
  /** Connection URL of the describe block's database. */
  readonly url: string;
  /** Its temp folder. */
  readonly dir: string;
}

export function usePostgresCli(prefix: string, options: { empty?: boolean } = {}): PostgresCliFixture {
  let url = '';
  let tmp: ReturnType<typeof tempDir> | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    const db = await createDatabase(await acquirePostgres(), options);
    url = db.url;
    drop = db.drop;
    tmp = tempDir(prefix);
  });
  afterEach(() => killSpawned());
  afterAll(async () => {
    await drop?.();
    await releasePostgres();
    tmp?.cleanup();
  });
  return {
    get url() {
      return url;
    },
    get dir() {
      return tmp?.dir ?? '';
    },
  };
}
