/** A PostgreSQL database with a migrated store and an engine over it, and the plans it gives statements. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Engine } from '../../src/engine/engine.js';
import type { StepRegistry } from '../../src/steps/step-type.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { acquirePostgres, createDatabase, releasePostgres } from './postgres.js';

/** The plan of `text` with `values`, as PostgreSQL would run it (custom) and as a prepared statement may (generic). */
export async function plans(client: pg.Client, text: string, values: unknown[]): Promise<string[]> {
  const out: string[] = [];
  for (const mode of ['force_custom_plan', 'force_generic_plan']) {
    await client.query(`SET plan_cache_mode = ${mode}`);
    out.push((await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n'));
  }
  return out;
}

/** Runs `use` with an engine on a fresh migrated database and a client of it; drops the database after. */
export async function withPostgresPlans(steps: StepRegistry, use: (engine: Engine, client: pg.Client) => Promise<void>): Promise<void> {
  const server = await acquirePostgres();
  const database = await createDatabase(server);
  const store = new PostgresStore({ url: database.url, poolSize: 2 });
  const engine = new Engine({ store, steps, artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-artifacts-')) });
  const client = new pg.Client({ connectionString: database.url });
  try {
    await store.migrate();
    await client.connect();
    await use(engine, client);
  } finally {
    await client.end().catch(() => undefined);
    await engine.close();
    await database.drop();
    await releasePostgres();
  }
}
