import type { Dialect, Rule } from '../ledger/effects.js';

/**
 * What the feature rules (datasets, eval cases, derived attribute values) need from a driver. The rules are written
 * once, as the ledger's are (../ledger/effects.ts): generator functions that yield statements, run synchronously
 * on SQLite and awaited on PostgreSQL. A rule asks {@link FeatureRunner.dialect} only where the two truly differ
 * (a row lock, a batch written as arrays).
 */
export interface FeatureRunner {
  readonly dialect: Dialect;
  /** JSON text as a JSON column takes it (PostgreSQL: the escapes jsonb refuses are encoded, see pg-json.ts). */
  jsonText(text: string): string;
  /** Text as a text column takes it (PostgreSQL: no U+0000). */
  text(text: string | null): string | null;
  /** A list of values as one parameter (PostgreSQL: an array; SQLite: JSON text, read with json_each). */
  list(values: readonly unknown[]): unknown;
  /**
   * Runs a rule that only reads. `make` makes the rule: a driver that retries after a lost connection runs a new
   * one (a rule is a generator, spent once run).
   */
  read<T>(make: () => Rule<T>): Promise<T>;
  /** Runs a rule in one write transaction: all of it is applied or none. `make` as for {@link read}. */
  write<T>(make: () => Rule<T>): Promise<T>;
}

/** Statement text of both dialects from one template. */
export function perDialect(text: (d: Dialect) => string): { sqlite: string; pg: string } {
  return { sqlite: text('sqlite'), pg: text('pg') };
}

/** `IN` the list parameter `param` (see {@link FeatureRunner.list}); `type` is its PostgreSQL element type. */
export function inList(d: Dialect, param: string, type = 'text'): string {
  return d === 'pg' ? `= ANY (${param}::${type}[])` : `IN (SELECT value FROM json_each(${param}))`;
}
