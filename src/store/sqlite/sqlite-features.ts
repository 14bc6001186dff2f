import type Database from 'better-sqlite3';
import { runSync, type Rule, type SyncExecutor } from '../ledger/effects.js';
import type { FeatureRunner } from '../features/feature-runner.js';
import { SharedStatements } from './statements.js';

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

  async read<T>(rule: Rule<T>): Promise<T> {
    return runSync(rule, this);
  }

  /** Runs a rule synchronously, in the current transaction if there is one. */
  run<T>(rule: Rule<T>): T {
    return runSync(rule, this);
  }

  async write<T>(rule: Rule<T>): Promise<T> {
    return this.writeTx(() => runSync(rule, this));
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
