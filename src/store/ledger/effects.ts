/**
 * The ledger's rules are generator functions that `yield` what they need done: a statement to run, or a call into
 * the driver (a pipeline definition, a child run ended). A driver runs them: SQLite synchronously inside a
 * better-sqlite3 transaction ({@link runSync}), PostgreSQL awaiting each statement on its client
 * ({@link runAsync}). The rules are written once; only the runner differs.
 */

/** The two dialects a statement is written for. */
export type Dialect = 'sqlite' | 'pg';

/**
 * A statement written once in PostgreSQL's style: `$1`, `$2`, ... parameters, `::type` casts on parameters. For
 * SQLite the casts are dropped and each `$n` becomes a positional `?` (arguments are repeated as needed), so one
 * text serves both. A statement whose text truly differs gives one per dialect.
 */
export class Statement {
  readonly sqlite: string;
  readonly pg: string;
  /** For SQLite: the argument index of each `?`, or null when they are 0, 1, 2, ... in order. */
  readonly sqliteOrder: readonly number[] | null;

  constructor(
    readonly key: string,
    text: string | { sqlite: string; pg: string },
  ) {
    this.pg = typeof text === 'string' ? text : text.pg;
    const { sql, order } = toSqlite(typeof text === 'string' ? text : text.sqlite);
    this.sqlite = sql;
    this.sqliteOrder = order.every((n, i) => n === i) ? null : order;
  }

  /** The arguments in SQLite's positional order. */
  sqliteArgs(args: readonly unknown[]): unknown[] {
    return this.sqliteOrder ? this.sqliteOrder.map((i) => args[i]) : (args as unknown[]);
  }
}

const keys = new Set<string>();

/** Declares a statement; `key` names it (PostgreSQL prepares it once per connection under that name). */
export function sql(key: string, text: string | { sqlite: string; pg: string }): Statement {
  if (keys.has(key)) throw new Error(`statement ${key} is declared twice`);
  keys.add(key);
  return new Statement(key, text);
}

/**
 * A bound LIMIT as SQLite is asked it: `LIMIT ? + 0`. SQLite built with STAT4 (as better-sqlite3 is) plans a LIMIT
 * that is a bare parameter with the parameter's value, so it prepares the statement again every time a value is
 * bound, that is on every execution (4 µs for a small SELECT, more for a large statement); as an expression, the
 * LIMIT is planned once.
 */
export function sqliteLimit(param: string): string {
  return `LIMIT ${param} + 0`;
}

function toSqlite(text: string): { sql: string; order: number[] } {
  const order: number[] = [];
  const out = text
    .replace(/\bLIMIT (\$\d+(?:::[a-z]+)?)(?![\w(]|\s*\+)/g, (_m, param: string) => sqliteLimit(param))
    .replace(/\$(\d+)(::[a-z]+(\[\])?)?/g, (_m, n: string) => {
      order.push(Number(n) - 1);
      return '?';
    })
    .replace(/::(jsonb|bigint|text|integer)\b/g, '');
  return { sql: out, order };
}

/** What a rule asks its runner for. */
export type Effect =
  | { kind: 'all' | 'get' | 'run'; stmt: Statement; args: readonly unknown[] }
  | { kind: 'call'; fn: () => unknown };

/** A rule: a generator of effects that returns `T`. */
export type Rule<T> = Generator<Effect, T, unknown>;

/** The rows of a query. */
export function* all<R>(stmt: Statement, args: readonly unknown[]): Rule<R[]> {
  return (yield { kind: 'all', stmt, args }) as R[];
}

/** The first row of a query, if any. */
export function* get<R>(stmt: Statement, args: readonly unknown[]): Rule<R | undefined> {
  return (yield { kind: 'get', stmt, args }) as R | undefined;
}

const keyLock = sql('keyLock', { sqlite: `SELECT $1 AS locked`, pg: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))` });

/**
 * Holds a lock on `key` until the transaction ends: an advisory lock on PostgreSQL, nothing more on SQLite, whose
 * write transaction already holds the whole store.
 */
export function* lockKey(key: string): Rule<void> {
  yield* get(keyLock, [key]);
}

/** Runs a statement; returns the number of rows it changed. */
export function* run(stmt: Statement, args: readonly unknown[]): Rule<number> {
  return (yield { kind: 'run', stmt, args }) as number;
}

/** Calls into the driver (which may answer with a promise on an asynchronous driver). */
export function* call<T>(fn: () => T | Promise<T>): Rule<T> {
  return (yield { kind: 'call', fn }) as T;
}

/** Runs statements for {@link runSync}. */
export interface SyncExecutor {
  all(stmt: Statement, args: readonly unknown[]): unknown[];
  get(stmt: Statement, args: readonly unknown[]): unknown;
  exec(stmt: Statement, args: readonly unknown[]): number;
}

/** Runs statements for {@link runAsync}. */
export interface AsyncExecutor {
  all(stmt: Statement, args: readonly unknown[]): Promise<unknown[]>;
  exec(stmt: Statement, args: readonly unknown[]): Promise<number>;
}

/** Drives a rule synchronously (inside a better-sqlite3 transaction). */
export function runSync<T>(rule: Rule<T>, exec: SyncExecutor): T {
  let next = rule.next();
  while (!next.done) {
    const e = next.value;
    let value: unknown;
    try {
      if (e.kind === 'call') {
        value = e.fn();
        if (value instanceof Promise) throw new Error('a synchronous driver answered a ledger call with a promise');
      } else if (e.kind === 'all') value = exec.all(e.stmt, e.args);
      else if (e.kind === 'get') value = exec.get(e.stmt, e.args);
      else value = exec.exec(e.stmt, e.args);
    } catch (err) {
      next = rule.throw(err);
      continue;
    }
    next = rule.next(value);
  }
  return next.value;
}

/** The rules {@link runAsync} has driven: a second run of one would find it spent and answer `undefined`. */
const driven = new WeakSet<Rule<unknown>>();

/**
 * Drives a rule, awaiting each effect (PostgreSQL). A rule is a generator, spent once run: a driver that tries a
 * transaction again makes a new rule for each try, and running a spent one throws rather than answering nothing.
 */
export async function runAsync<T>(rule: Rule<T>, exec: AsyncExecutor): Promise<T> {
  if (driven.has(rule)) throw new Error('a ledger rule was run twice: each try of a transaction needs a new rule');
  driven.add(rule);
  let next = rule.next();
  while (!next.done) {
    const e = next.value;
    let value: unknown;
    try {
      if (e.kind === 'call') value = await e.fn();
      else if (e.kind === 'run') value = await exec.exec(e.stmt, e.args);
      else {
        const rows = await exec.all(e.stmt, e.args);
        value = e.kind === 'get' ? rows[0] : rows;
      }
    } catch (err) {
      next = rule.throw(err);
      continue;
    }
    next = rule.next(value);
  }
  return next.value;
}
