import { resolve } from 'node:path';
import { SluiceError } from '../core/errors.js';
import type { Store } from './store.js';
import { storeFailureOf, toStoreError } from './store-errors.js';
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
    return openSqlite(path === ':memory:' ? path : resolve(path));
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const store = new PostgresStore({ url });
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw new SluiceError('STORE_ERROR', `cannot open ${store.url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return store;
  }
  throw new SluiceError('STORE_ERROR', `unknown store URL ${url}; expected sqlite:PATH or postgres://...`);
}

/** Opens and migrates a SQLite store; a file or folder it cannot write is named plainly (STORE_READONLY). */
async function openSqlite(path: string): Promise<Store> {
  let store: SqliteStore | undefined;
  try {
    store = new SqliteStore({ path });
    await store.migrate();
    return store;
  } catch (err) {
    store?.close().catch(() => undefined);
    throw sqliteOpenError(err, path);
  }
}

function sqliteOpenError(err: unknown, path: string): unknown {
  if (err instanceof SluiceError && err.code !== 'STORE_READONLY') return err;
  const code = (err as { code?: unknown }).code;
  const reason = err instanceof Error ? err.message : String(err);
  const denied = code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
  if (storeFailureOf(err) === 'STORE_READONLY' || denied) {
    return new SluiceError('STORE_READONLY', `the store ${path} is read-only (${reason}): sluice must be able to write the file and its folder, where it keeps its -wal and -shm files`, { cause: err });
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return new SluiceError('STORE_ERROR', `cannot open the store ${path}: ${reason}`, { cause: err });
  return toStoreError(err, path);
}
