import type Database from 'better-sqlite3';
import type { Statement } from '../ledger/effects.js';

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
