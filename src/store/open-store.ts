import { resolve } from 'node:path';
import { SluiceError } from '../core/errors.js';
import type { Store } from './store.js';
import { maskStoreUrl } from './store-url.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** Default store URL: a SQLite file under the working directory. */
export const DEFAULT_STORE_URL = 'sqlite:.sluice/sluice.db';

/**
 * Opens and migrates the store named by `url`: `sqlite:PATH` (relative paths resolve against the
 * working directory), `sqlite::memory:`, or `postgres://...`.
 */
export async function openStore(url: string = DEFAULT_STORE_URL): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (!path) throw new SluiceError('STORE_ERROR', `store URL ${url} names no file; use sqlite:PATH`);
    const store = new SqliteStore({ path: path === ':memory:' ? path : resolve(path) });
    await store.migrate();
    return store;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const store = new PostgresStore({ url });
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw new SluiceError('STORE_ERROR', `cannot open ${maskStoreUrl(store.url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return store;
  }
  throw new SluiceError('STORE_ERROR', `unknown store URL ${maskStoreUrl(url)}; expected sqlite:PATH or postgres://...`);
}
