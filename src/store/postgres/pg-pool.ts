import pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import { toStoreError } from '../store-errors.js';
import { decodePgJson } from './pg-json.js';
import { isErrorLike, messageOf } from '../error-brand.js';

/** Type OIDs whose text form we parse ourselves. */
const INT8 = 20;
const NUMERIC = 1700;
const JSON_OID = 114;
const JSONB = 3802;

/**
 * Values as the row converters shared with SQLite expect them: bigint as a JS number (epoch ms and ids stay
 * far below 2^53) and JSON as its text, parsed by the converters so no two readers share one object.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => Number(v);
    if (oid === JSON_OID || oid === JSONB) return decodePgJson;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PoolOptions {
  connectionString: string;
  /** Connections of this process. Default: 10. */
  max?: number;
  onError(err: unknown): void;
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10, types, connectionTimeoutMillis: 10_000 });
  // An idle client whose server went away emits here; without a listener the process would crash.
  pool.on('error', (err) => options.onError(err));
  // A checked-out client has no pool listener: when its connection drops (a server restart, a reset socket) it
  // emits 'error' itself, which would crash the process. The query in flight fails too and is retried, and the
  // pool discards the broken client when it is released.
  pool.on('connect', (client) => client.on('error', (err) => options.onError(err)));
  return pool;
}

export function clientTypes(): pg.CustomTypesConfig {
  return types;
}

/** SQLSTATE classes and codes worth retrying: lost connections, server restarts, deadlocks, serialization. */
const TRANSIENT_CODES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300', '55P03']);
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/** Whether `err` may go away if the transaction is tried again. */
export function isTransient(err: unknown): boolean {
  if (!isErrorLike(err)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('08') || TRANSIENT_NODE_CODES.has(code))) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|terminating connection/i.test(err.message);
}

export interface TransactionOptions {
  /**
   * Whether the transaction may be tried again when the connection is lost while COMMIT is in flight (its
   * outcome is then unknown). True for work that a second application rejects or repeats harmlessly
   * (fenced results, claims whose leases simply expire). Default: false.
   */
  retryUnknownCommit?: boolean;
  /**
   * `fn` runs exactly one statement, which is a transaction by itself (no BEGIN and COMMIT: one round trip
   * instead of three). Default: false.
   */
  single?: boolean;
  /**
   * The commit does not wait for its WAL flush (synchronous_commit off for this transaction): for work whose loss
   * in a server crash is harmless (a claim: its attempts are simply claimable again). Default: false.
   */
  relaxed?: boolean;
  /**
   * The planner reads indexes in order instead of by bitmap (enable_bitmapscan off for this transaction): a claim
   * then takes the first attempts of the queue index and stops, where a bitmap scan would read and sort the whole
   * backlog, which the planner prefers when the table has no statistics yet (as right after a bulk create). Every
   * other statement of such a transaction reads rows by key. Default: false.
   */
  indexOrder?: boolean;
  /**
   * A statement sent with BEGIN, in the same query (one round trip where there were two); its rows are handed to
   * `fn`. Sent by the simple query protocol, so its text holds its values inline. Not with `single`.
   */
  opening?: string;
}

export interface RetryPolicy {
  /** How long transient errors are retried before the error is thrown. */
  retryForMs: number;
  onRetry(err: unknown): void;
  /** Called when a transaction committed (the server answers again after retries). Default: nothing. */
  onSuccess?(): void;
}

/** A COMMIT whose outcome is unknown (the connection failed during it); `cause` is the driver's error. */
interface UnknownCommit {
  unknownCommit: true;
  cause: unknown;
}

function unknownCommit(message: string, cause: unknown): Error & UnknownCommit {
  return Object.assign(new Error(message, { cause }), { unknownCommit: true as const, cause });
}

function isUnknownCommit(err: unknown): err is UnknownCommit {
  return typeof err === 'object' && err !== null && (err as { unknownCommit?: unknown }).unknownCommit === true;
}

/**
 * Runs `fn` in one transaction (BEGIN ... COMMIT, ROLLBACK on error). Transient errors (a lost connection, a
 * server restart, a deadlock) are retried with exponential backoff for up to `policy.retryForMs`.
 */
export async function transaction<T>(pool: pg.Pool, policy: RetryPolicy, fn: (client: pg.PoolClient, opened: pg.QueryResultRow[]) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  if (options.single && options.opening !== undefined) throw new Error('a single-statement transaction sends no BEGIN to open with');
  const deadline = Date.now() + policy.retryForMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await (options.single ? alone(pool, fn) : once(pool, fn, beginOf(options), options.opening));
      policy.onSuccess?.();
      return result;
    } catch (err) {
      const unknown = isUnknownCommit(err);
      const cause = unknown ? err.cause : err;
      const retry = isTransient(cause) && (!unknown || options.retryUnknownCommit === true) && Date.now() < deadline;
      if (!retry) throw unknown ? wrapUnknown(cause) : toStoreError(cause);
      policy.onRetry(cause);
      await sleep(Math.min(2000, 25 * 2 ** Math.min(attempt, 7)) * (0.5 + Math.random() / 2));
    }
  }
}

/** BEGIN with the transaction's settings, sent as one query (one round trip). */
function beginOf(options: TransactionOptions): string {
  const settings = [...(options.relaxed ? ['synchronous_commit = off'] : []), ...(options.indexOrder ? ['enable_bitmapscan = off'] : [])];
  return ['BEGIN', ...settings.map((s) => `SET LOCAL ${s}`)].join('; ');
}

async function once<T>(pool: pg.Pool, fn: (client: pg.PoolClient, opened: pg.QueryResultRow[]) => Promise<T>, begin: string, opening: string | undefined): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    let opened: pg.QueryResultRow[] = [];
    let result: T;
    try {
      if (opening === undefined) await client.query(begin);
      // Several statements in one query: the driver answers with the result of each, the opening's last.
      else opened = ((await client.query(`${begin}; ${opening}`)) as unknown as pg.QueryResult[]).at(-1)!.rows;
      result = await fn(client, opened);
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      if (isTransient(err)) broken ??= err as Error;
      throw err;
    }
    try {
      await client.query('COMMIT');
    } catch (err) {
      broken = err as Error;
      throw unknownCommit('COMMIT failed', err);
    }
    return result;
  } finally {
    // A client whose connection failed is destroyed rather than returned to the pool.
    client.release(broken);
  }
}

/** Runs `fn`'s single statement outside a transaction block; a failure during it leaves its outcome unknown. */
async function alone<T>(pool: pg.Pool, fn: (client: pg.PoolClient, opened: pg.QueryResultRow[]) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await fn(client, []);
  } catch (err) {
    if (!isTransient(err)) throw err;
    broken = err as Error;
    // An error the server sent means the statement did not commit; a lost connection leaves it unknown.
    if (isServerError(err)) throw err;
    throw unknownCommit('the statement failed', err);
  } finally {
    client.release(broken);
  }
}

function isServerError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08');
}

function wrapUnknown(cause: unknown): SluiceError {
  return new SluiceError('STORE_UNAVAILABLE', `the connection was lost while committing; the outcome is unknown: ${messageOf(cause)}`, {
    retryable: true,
    cause,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
