import type pg from 'pg';
import { migrations } from './migrations/index.js';
import { MIGRATION_LOCK_KEY, SQL } from './pg-store-sql.js';

/** Applies pending numbered migrations, each in its own transaction, recorded in a ledger. Idempotent. */
export async function migrateDatabase(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    // Several processes may start at once: one migrates, the others wait and then find nothing to do.
    await client.query('SELECT pg_advisory_lock($1)', [String(MIGRATION_LOCK_KEY)]);
    try {
      await client.query(SQL.ledger);
      const done = new Set((await client.query<{ id: number }>(SQL.appliedMigrations)).rows.map((r) => r.id));
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query(SQL.recordMigration, [m.id, m.name, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [String(MIGRATION_LOCK_KEY)]);
    }
  } finally {
    client.release();
  }
}
