/**
 * Vitest global setup, once per test run:
 * - ONE PostgreSQL (embedded, or `SLUICE_TEST_POSTGRES_URL`) with ONE database migrated by the store's own
 *   migrations, which tests clone per store (see ./postgres.ts). Nothing when `SLUICE_TEST_POSTGRES=off`.
 * - ONE migrated SQLite file, which tests copy per store (see ./sqlite-template.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { admin, databaseUrl, dropDatabase, postgresDisabled, startServer, type SharedPostgres } from './postgres-server.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const sqlite = await sqliteTemplate();
  project.provide('sluiceSqliteTemplate', sqlite.path);
  let postgres: { shared: SharedPostgres; stop(): Promise<void> } | null = null;
  try {
    postgres = postgresDisabled() ? null : await postgresTemplate();
  } catch (err) {
    sqlite.remove();
    throw err;
  }
  project.provide('sluicePostgres', postgres?.shared ?? null);
  return async () => {
    sqlite.remove();
    await postgres?.stop();
  };
}

/** A migrated SQLite file, closed (its WAL folded in, so the file stands alone). */
async function sqliteTemplate(): Promise<{ path: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-template-'));
  const path = join(dir, 'sluice.db');
  const store = new SqliteStore({ path });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The run's PostgreSQL server and its migrated template database. */
async function postgresTemplate(): Promise<{ shared: SharedPostgres; stop(): Promise<void> }> {
  const server = await startServer();
  const template = `sluice_template_${randomBytes(6).toString('hex')}`;
  try {
    await admin(server.adminUrl, (c) => c.query(`CREATE DATABASE ${template}`));
    // Every connection to the template must be closed before it can be cloned: the store is closed here.
    const store = new PostgresStore({ url: databaseUrl(server.adminUrl, template), poolSize: 1 });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
  } catch (err) {
    await dropDatabase(server.adminUrl, template).catch(() => undefined);
    await server.stop();
    throw err;
  }
  return {
    shared: { adminUrl: server.adminUrl, template },
    async stop() {
      await dropDatabase(server.adminUrl, template).catch(() => undefined);
      await server.stop();
    },
  };
}
