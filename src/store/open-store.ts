import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SluiceError } from '../core/errors.js';
import type { Store } from './store.js';
import { maskStoreUrl } from './store-url.js';
import { storeFailureOf, toStoreError } from './store-errors.js';
import { importOptional } from '../core/optional-package.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { isErrorLike, isSluiceError, messageOf } from './error-brand.js';

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
    // Loaded here, not at import: SQLite users need neither the PostgreSQL store nor `pg` (an optional peer).
    const { PostgresStore } = await importOptional('pg', `the store ${maskStoreUrl(url)}`, () => import('./postgres/postgres-store.js'));
    const store = new PostgresStore({ url });
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw new SluiceError('STORE_ERROR', `cannot open ${maskStoreUrl(store.url)}: ${messageOf(err)}`, { cause: err });
    }
    return store;
  }
  throw new SluiceError('STORE_ERROR', `unknown store URL ${maskStoreUrl(url)}; expected sqlite:PATH or postgres://...`);
}

/** Opens and migrates a SQLite store; a file or folder it cannot write is named plainly (STORE_READONLY). */
async function openSqlite(path: string): Promise<Store> {
  if (path !== ':memory:') assertWritable(path);
  let store: SqliteStore | undefined;
  try {
    store = new SqliteStore({ path });
    await store.migrate();
    return store;
  } catch (err) {
    await store?.close().catch(() => undefined);
    throw sqliteOpenError(err, path);
  }
}

/**
 * Refuses a store file, or the folder that holds it (SQLite writes -wal and -shm files there), that this process
 * may not write: SQLite would open it read-only and fail at the first write, long after startup.
 */
function assertWritable(path: string): void {
  const target = existsSync(path) ? path : nearestExisting(dirname(path));
  for (const p of target === path ? [path, dirname(path)] : [target]) {
    try {
      accessSync(p, constants.W_OK);
    } catch (err) {
      throw readOnly(path, `${p === path ? 'the file' : `the folder ${p}`} is not writable: ${(err as Error).message}`, err);
    }
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

function readOnly(path: string, reason: string, cause: unknown): SluiceError {
  return new SluiceError('STORE_READONLY', `the store ${path} is read-only (${reason}); sluice must be able to write the file and its folder`, { cause });
}

function sqliteOpenError(err: unknown, path: string): unknown {
  const code = (err as { code?: unknown }).code;
  // The driver's own words, not a wrapper's: the message names the path once.
  const driver = isSluiceError(err) && isErrorLike(err.cause) ? err.cause : err;
  const reason = messageOf(driver);
  if (storeFailureOf(err) === 'STORE_READONLY' || code === 'EACCES' || code === 'EPERM') return readOnly(path, reason, err);
  if (isSluiceError(err)) return err;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return new SluiceError('STORE_ERROR', `cannot open the store ${path}: ${reason}`, { cause: err });
  return toStoreError(err, path);
}
