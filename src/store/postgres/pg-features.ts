import type pg from 'pg';
import { runAsync, type AsyncExecutor, type Rule, type Statement } from '../ledger/effects.js';
import type { FeatureRunner } from '../features/feature-runner.js';
import { encodePgJson, toPgText } from './pg-json.js';

/** Runs `fn` in one transaction, retrying transient failures (the store's `transaction`). */
export type RunTransaction = <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

/**
 * The PostgreSQL driver of the feature rules (../features): runs each in one transaction, awaiting each statement
 * on its client (prepared once per connection by name).
 */
export class PgFeatureRunner implements FeatureRunner {
  readonly dialect = 'pg' as const;

  constructor(private readonly tx: RunTransaction) {}

  read<T>(rule: Rule<T>): Promise<T> {
    return this.tx((client) => runAsync(rule, executor(client)));
  }

  write<T>(rule: Rule<T>): Promise<T> {
    return this.read(rule);
  }

  jsonText(text: string): string {
    return encodePgJson(text);
  }

  text(text: string | null): string | null {
    return toPgText(text);
  }

  list(values: readonly unknown[]): readonly unknown[] {
    return values;
  }
}

function executor(client: pg.PoolClient): AsyncExecutor {
  const query = (stmt: Statement, args: readonly unknown[]) => client.query({ name: `f_${stmt.key}`, text: stmt.pg, values: args as unknown[] });
  return {
    all: async (stmt, args) => (await query(stmt, args)).rows,
    exec: async (stmt, args) => (await query(stmt, args)).rowCount ?? 0,
  };
}
