/**
 * The store fixtures of a release (test/fixtures/stores/), made by scripts/store-fixture.ts from that release's
 * build and read by test/store-contract/migrate-in-place.test.ts: what each run held when the release left it, and
 * for PostgreSQL the database itself (migrations applied, every row, the sequences). Also the one way a fixture is
 * put back into an empty PostgreSQL database.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

/** The states the fixture holds a run in, one run each (the child is the parent's). */
export const FIXTURE_STATES = [
  'succeeded',
  'failed',
  'dead-lettered',
  'paused',
  'blocked',
  'sleeping',
  'waiting-for-event',
  'parent',
  'child',
  'queued',
  'running',
] as const;
export type FixtureState = (typeof FIXTURE_STATES)[number];

/** An event as the release's `listEvents` read it. */
export interface FixtureEvent {
  id: number;
  runId: string;
  pipeline: string;
  step: string | null;
  type: string;
  data: Record<string, unknown> | null;
  at: number;
}

/** One run of the fixture and what the release read of it once it was left in its state. */
export interface FixtureRun {
  state: FixtureState;
  runId: string;
  pipeline: string;
  status: string;
  /** Each step's status, by step name. */
  steps: Record<string, string>;
  events: FixtureEvent[];
}

/** What the test needs to move each run on: times, names and values the release's runs were made with. */
export interface FixtureFacts {
  /** The owner of the running run's attempt (a worker of another machine) and when its lease expires, epoch ms. */
  lease: { owner: string; step: string; expiresAt: number };
  /** When the sleeping run's sleep step wakes, epoch ms. */
  sleep: { step: string; wakeAt: number };
  /** The event, and a payload it matches, that the waiting run waits for. */
  event: { step: string; name: string; payload: Record<string, unknown> };
  /** The step the blocked run waits on for a human decision. */
  approval: { step: string };
  /** The input of the succeeded run, whose steps are all cached. */
  cached: { input: unknown };
}

/** What a fixture generator writes beside each backend's store. */
export interface StoreFixture {
  /** The commit of the release that made the store. */
  release: string;
  backend: 'sqlite' | 'postgres';
  /** The clock, epoch ms, when the release left the store. */
  now: number;
  facts: FixtureFacts;
  runs: FixtureRun[];
}

/** A migration the release applied, with a hash of the SQL text it ran. */
export interface FixtureMigration {
  id: number;
  name: string;
  appliedAt: number;
  sha256: string;
}

/** Every row of one table, each value in PostgreSQL's text form (null for SQL NULL), columns in table order. */
export interface FixtureTable {
  name: string;
  columns: Array<{ name: string; type: string }>;
  rows: Array<Array<string | null>>;
}

/** A sequence's state, to be set with `setval(name, value, isCalled)`. */
export interface FixtureSequence {
  name: string;
  value: string;
  isCalled: boolean;
}

/** The PostgreSQL fixture: the store fixture plus the database, tables in an order their foreign keys allow. */
export interface PostgresStoreFixture extends StoreFixture {
  backend: 'postgres';
  migrations: FixtureMigration[];
  tables: FixtureTable[];
  sequences: FixtureSequence[];
}

/** The sha256 of a migration's SQL text, hex. */
export function migrationHash(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** The migrations table and the statement recording a migration, as the store's migrator writes them. */
export interface MigrationLedger {
  create: string;
  record: string;
}

/**
 * Puts a PostgreSQL fixture into an empty database: creates the migrations table, applies exactly the fixture's
 * migrations (each with its SQL text from `migrations`, recorded with the release's time, each in a transaction, as
 * the migrator does), inserts every row (each value cast back from its text form) and sets the sequences.
 */
export async function restorePostgresFixture(
  client: pg.Client,
  fixture: PostgresStoreFixture,
  migrations: ReadonlyArray<{ id: number; name: string; sql: string }>,
  ledger: MigrationLedger,
): Promise<void> {
  await client.query(ledger.create);
  for (const applied of fixture.migrations) {
    const m = migrations.find((x) => x.id === applied.id);
    if (!m) throw new Error(`migration ${applied.id} (${applied.name}) of the fixture is not among the current migrations`);
    await inTransaction(client, async () => {
      await client.query(m.sql);
      await client.query(ledger.record, [m.id, m.name, applied.appliedAt]);
    });
  }
  await inTransaction(client, async () => {
    for (const table of fixture.tables) await insertRows(client, table);
    for (const s of fixture.sequences) await client.query('SELECT setval($1::regclass, $2::bigint, $3)', [s.name, s.value, s.isCalled]);
  });
}

/** Inserts a table's rows in one statement: each value from its text form, cast to its column's type. */
async function insertRows(client: pg.Client, table: FixtureTable): Promise<void> {
  if (table.rows.length === 0) return;
  const names = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const values = table.columns.map((c, i) => `(r ->> ${i})::${c.type}`).join(', ');
  await client.query(`INSERT INTO ${quoteIdent(table.name)} (${names}) SELECT ${values} FROM json_array_elements($1::json) AS r`, [JSON.stringify(table.rows)]);
}

async function inTransaction(client: pg.Client, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

/** A SQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
