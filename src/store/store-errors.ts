import { SluiceError, type ErrorCode } from '../core/errors.js';
import { isErrorLike, isSluiceError, messageOf } from './error-brand.js';

/**
 * What a store failure means to its caller, in one place for both backends. Drivers throw their own errors
 * (better-sqlite3's SqliteError with a `SQLITE_*` code, pg's DatabaseError with a SQLSTATE, Node socket errors);
 * callers match on these stable codes instead:
 *
 * - `STORE_UNAVAILABLE`: the store cannot be reached (connection refused or lost, server restarting). Retry later.
 * - `STORE_FULL`: the disk is full (SQLITE_FULL, PostgreSQL 53100). Retry once space is freed; nothing was written.
 * - `STORE_READONLY`: the store cannot be written (SQLITE_READONLY, a file or folder without write permission).
 * - `VALUE_REFUSED`: the store refused this value (text PostgreSQL cannot hold, a value too large). Retrying the
 *   same value fails the same way.
 */
export type StoreFailure = Extract<ErrorCode, 'STORE_UNAVAILABLE' | 'STORE_FULL' | 'STORE_READONLY' | 'VALUE_REFUSED'>;

/** SQLSTATEs of a lost or refused connection (class 08, admin shutdown, crash, starting up, too many clients). */
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300']);
/** SQLSTATEs of a value PostgreSQL cannot hold: bad encoding, untranslatable character, invalid JSON, too long. */
const PG_REFUSED = new Set(['22021', '22P05', '22P02', '22026', '22001']);
const NODE_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const LOST_CONNECTION = /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|terminating connection|Connection ended/i;

/** The stable code of a driver error that has one; undefined for anything else (a bug, a constraint). */
export function storeFailureOf(err: unknown): StoreFailure | undefined {
  if (!isErrorLike(err)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === 'STORE_UNAVAILABLE' || code === 'STORE_FULL' || code === 'STORE_READONLY' || code === 'VALUE_REFUSED') return code;
    if (code === 'SQLITE_FULL' || code === '53100' || code === 'ENOSPC') return 'STORE_FULL';
    // 25006: a read-only transaction (a hot standby, default_transaction_read_only).
    if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === '25006') return 'STORE_READONLY';
    // Class 54: program limit exceeded (a value too large or nested too deep for the server).
    if (code === 'SQLITE_TOOBIG' || PG_REFUSED.has(code) || code.startsWith('54')) return 'VALUE_REFUSED';
    if (code.startsWith('08') || PG_UNAVAILABLE.has(code) || NODE_UNAVAILABLE.has(code)) return 'STORE_UNAVAILABLE';
  }
  if (!isSluiceError(err) && LOST_CONNECTION.test(err.message)) return 'STORE_UNAVAILABLE';
  return undefined;
}

const WHAT: Record<StoreFailure, string> = {
  STORE_UNAVAILABLE: 'is unavailable',
  STORE_FULL: 'is full (no space left for it); nothing was written',
  STORE_READONLY: 'is read-only',
  VALUE_REFUSED: 'refused a value',
};

/**
 * `err` as a {@link SluiceError} with its store code, when it has one; otherwise `err` itself. `where` names the
 * store (a path or a URL without password) for the message.
 */
export function toStoreError(err: unknown, where?: string): unknown {
  if (isSluiceError(err)) return err;
  const failure = storeFailureOf(err);
  if (failure === undefined) return err;
  const message = `the store${where === undefined ? '' : ` ${where}`} ${WHAT[failure]}: ${messageOf(err)}`;
  return new SluiceError(failure, message, { retryable: failure !== 'VALUE_REFUSED' && failure !== 'STORE_READONLY', cause: err });
}

/** Whether `err` is a store's refusal of a value, which the same value will meet again (see {@link storeFailureOf}). */
export function isValueRefused(err: unknown): boolean {
  return storeFailureOf(err) === 'VALUE_REFUSED';
}
