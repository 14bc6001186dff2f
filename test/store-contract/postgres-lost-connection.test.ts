/**
 * A statement whose connection is lost is tried again on a new connection, and the try runs the whole rule again:
 * a read answers what is stored (never "nothing"), a write is applied. The connection is lost on purpose: the
 * statement waits for a table lock held by the test, which then terminates the statement's backend.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizePipeline, pipelineVersionHash } from '../../src/core/validate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { get, runAsync, sql } from '../../src/store/ledger/effects.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { waitFor } from '../support/cli.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres, type PostgresServer } from '../support/postgres.js';

describe('a ledger rule', () => {
  it('refuses to run twice, rather than answering nothing', async () => {
    const statement = sql('answer', 'SELECT 1 AS n');
    const exec = { all: async () => [{ n: 1 }], exec: async () => 0 };
    const rule = get<{ n: number }>(statement, []);
    expect(await runAsync(rule, exec)).toEqual({ n: 1 });
    await expect(runAsync(rule, exec)).rejects.toThrow(/run twice/);
  });
});

describe.skipIf(postgresDisabled())('postgres store when a connection is lost mid-statement', () => {
  let server: PostgresServer;
  let url = '';
  let drop: (() => Promise<void>) | undefined;
  let store: PostgresStore;
  let locker: pg.Client;

  beforeAll(async () => {
    server = await acquirePostgres();
    ({ url, drop } = await createDatabase(server));
  });
  afterEach(async () => {
    await locker?.end().catch(() => undefined);
    await store?.close();
  });
  afterAll(async () => {
    await drop?.();
    await releasePostgres();
  });

  const stepTypes = builtinStepTypes();
  const pipeline = (name: string, code: string) => normalizePipeline({ name, steps: { a: { uses: 'code', with: { code } } } }, { stepTypes });

  /**
   * Runs `statement` while the test holds `pipelines` locked, terminates the backend that waits for the lock, then
   * lets go; resolves to what the statement answered.
   */
  async function withLostConnection<T>(statement: () => Promise<T>): Promise<T> {
    const database = new URL(url).pathname.slice(1);
    locker = new pg.Client({ connectionString: url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE pipelines IN ACCESS EXCLUSIVE MODE');
    const answer = statement();
    answer.catch(() => undefined);
    const waiting = await waitFor('the statement to wait for the lock', async () => {
      const { rows } = await locker.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
        [database],
      );
      return rows[0];
    });
    await locker.query('SELECT pg_terminate_backend($1)', [waiting.pid]);
    await locker.query('ROLLBACK');
    return answer;
  }

  it('answers a read from the stored row after the retry', async () => {
    store = new PostgresStore({ url, poolSize: 2 });
    await store.migrate();
    const p = pipeline('lost-read', 'return 1;');
    await store.savePipeline(p, pipelineVersionHash(p));
    const read = await withLostConnection(() => store.getPipeline('lost-read'));
    expect(read?.name, 'the read was answered with nothing after its connection was lost').toBe('lost-read');
    expect(read?.version).toBe(1);
  });

  it('applies a write after the retry', async () => {
    store = new PostgresStore({ url, poolSize: 2 });
    await store.migrate();
    const p = pipeline('lost-write', 'return 2;');
    const saved = await withLostConnection(() => store.savePipeline(p, pipelineVersionHash(p)));
    expect(saved?.version).toBe(1);
    expect((await store.listPipelineVersions('lost-write')).map((v) => v.version)).toEqual([1]);
  });
});
