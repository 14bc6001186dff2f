import type Database from 'better-sqlite3';
import { runSync, type Rule, type Statement, type SyncExecutor } from '../ledger/effects.js';
import type { FeatureRunner } from '../features/feature-runner.js';

/**
 * Runs shared statements (../ledger/effects.ts) on one connection, each prepared on first use and kept: the part
 * of a synchronous executor that the ledger's and the features' SQLite runners have in common.
 */
export class SharedStatements {
  private readonly prepared = new Map<Statement, Database.Statement>();

  constructor(protected readonly db: Database.Database) {}

  all(stmt: Statement, args: readonly unknown[]): unknown[] {
    return this.prepare(stmt).all(stmt.sqliteArgs(args));
  }

  get(stmt: Statement, args: readonly unknown[]): unknown {
    return this.prepare(stmt).get(stmt.sqliteArgs(args));
  }

  exec(stmt: Statement, args: readonly unknown[]): number {
    return this.prepare(stmt).run(stmt.sqliteArgs(args)).changes;
  }

  private prepare(stmt: Statement): Database.Statement {
    let p = this.prepared.get(stmt);
    if (!p) {
      p = this.db.prepare(stmt.sqlite);
      this.prepared.set(stmt, p);
    }
    return p;
  }
}

/**
 * The SQLite driver of the feature rules (../features): runs each synchronously, on the store's connection, with
 * statements prepared once; a write inside the store's write transaction.
 */
export class SqliteFeatureRunner extends SharedStatements implements FeatureRunner, SyncExecutor {
  readonly dialect = 'sqlite' as const;

  constructor(
    db: Database.Database,
    private readonly writeTx: <T>(fn: () => T) => T,
  ) {
    super(db);
  }

  async read<T>(make: () => Rule<T>): Promise<T> {
    return runSync(make(), this);
  }

  /** Runs a rule synchronously, in the current transaction if there is one. */
  run<T>(rule: Rule<T>): T {
    return runSync(rule, this);
  }

  async write<T>(make: () => Rule<T>): Promise<T> {
    return this.writeTx(() => runSync(make(), this));
  }

  jsonText(text: string): string {
    return text;
  }

  text(text: string | null): string | null {
    return text;
  }

  list(values: readonly unknown[]): string {
    return JSON.stringify(values);
  }

}
