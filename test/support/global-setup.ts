/**
 * Vitest global setup: ONE PostgreSQL for the whole test run (embedded, or `SLUICE_TEST_POSTGRES_URL`) with ONE
 * database migrated by the store's own migrations, which tests clone per store (see ./postgres.ts). Nothing when
 * `SLUICE_TEST_POSTGRES=off`.
 */
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { admin, databaseUrl, dropDatabase, postgresDisabled, startServer } from './postgres-server.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (postgresDisabled()) {
    project.provide('sluicePostgres', null);
    return async () => undefined;
  }
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
  project.provide('sluicePostgres', { adminUrl: server.adminUrl, template });
  return async () => {
    await dropDatabase(server.adminUrl, template).catch(() => undefined);
    await server.stop();
  };
}
