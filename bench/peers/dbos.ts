/**
 * DBOS Transact peer: durable workflows checkpointed in PostgreSQL.
 *
 * DBOS is a singleton per process, so each measurement runs DBOS in a child process
 * (bench/peers/dbos-child.ts) that launches (creating and migrating its system database) before the
 * clock starts.
 *
 * - W1: `jobs` one-step workflows (one no-op `DBOS.runStep`), enqueued in bulk by this process with
 *   `DBOSClient.enqueueInTransaction` (1,000 per transaction) onto the queue `bench`, then executed by the child: the clock runs from the
 *   queue's registration (which starts its dispatch loop) until the system database holds no workflow
 *   that has not succeeded.
 * - W2: one workflow of `steps` sequential no-op steps, timed in the child from the call to its result.
 *
 * DBOS writes the workflow's status row when it starts and ends and one `operation_outputs` row per
 * step, each in its own committed transaction, before the step's caller continues: every step's result
 * is durable in PostgreSQL before the next step starts.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type PostgresDatabase } from '../support/postgres.js';
import { packageVersion } from '../support/versions.js';
import { result, withTimeout, type PeerResult } from './types.js';
import { spawnPeerChild, stopPeerChild, waitForMessage, type PeerChild } from './child-process.js';

export const DBOS_APP_NAME = 'sluice-bench';
export const DBOS_APP_VERSION = 'bench-1';
export const DBOS_QUEUE = 'bench';
/** The registered name of the W1 workflow: one no-op step. */
export const DBOS_W1_WORKFLOW = 'oneStep';

export interface DbosW1Options {
  jobs: number;
  /** The queue's `workerConcurrency` (workflows running at once in the child). Default 256. */
  workerConcurrency?: number;
  /** The queue's `minPollingIntervalMs` (DBOS's default is 1000). Default 10. */
  pollMs?: number;
  /** The child's `systemDatabasePoolSize` (DBOS's default is 10). Default 64. */
  poolSize?: number;
  /** Connections enqueueing at once (1,000 workflows per transaction) while creating the workflows. Default 4. */
  enqueueLanes?: number;
  /** Use this (empty) database instead of starting one with startPostgres(). */
  url?: string;
  /** Bound on the timed run. Default 180 s. */
  timeoutMs?: number;
}

export interface DbosW2Options {
  steps: number;
  /** Steps of an untimed workflow run first in the same process and database. Default 0: none. */
  warm?: number;
  /**
   * PostgreSQL's `synchronous_commit` for the system database. Default true (on: a step's commit waits for
   * its WAL flush). false: commits survive a crash of the DBOS process but the last ~0.6 s of them can be
   * lost if PostgreSQL itself or the machine stops, close to SQLite's WAL with `synchronous=NORMAL`.
   */
  synchronousCommit?: boolean;
  /** The child's `systemDatabasePoolSize`. Default 64. */
  poolSize?: number;
  url?: string;
  /** Bound on the timed run. Default 180 s. */
  timeoutMs?: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const childScript = path.join(here, 'dbos-child.ts');
const POLL_MS = 20;
const ENQUEUE_CHUNK = 1000;

type Child = PeerChild;

const spawnChild = (url: string, poolSize: number): Child => spawnPeerChild(childScript, [url, String(poolSize)], repoRoot, 'DBOS child');
const waitFor = waitForMessage;
const stopChild = stopPeerChild;

async function setup(url: string | undefined, poolSize: number, synchronousCommit = true) {
  const db: PostgresDatabase | undefined = url ? undefined : await startPostgres();
  const dbUrl = url ?? db!.url;
  let child: Child | undefined;
  const close = async () => {
    if (child) await stopChild(child);
    await db?.stop();
  };
  try {
    if (!synchronousCommit) {
      const admin = new pg.Client({ connectionString: dbUrl });
      await admin.connect();
      try {
        const name = (await admin.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
        await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} SET synchronous_commit = off`);
      } finally {
        await admin.end();
      }
    }
    child = spawnChild(dbUrl, poolSize);
    await withTimeout(waitFor(child, 'ready'), 120_000, 'DBOS launch');
    return { url: dbUrl, child, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Enqueues `jobs` W1 workflows in bulk: `DBOSClient.enqueueInTransaction`, 1,000 per transaction, on
 * `lanes` connections at once.
 */
async function enqueueAll(url: string, jobs: number, lanes: number): Promise<void> {
  const { DBOSClient } = await import('@dbos-inc/dbos-sdk');
  const client = await DBOSClient.create({ systemDatabaseUrl: url });
  const options = {
    queueName: DBOS_QUEUE,
    workflowName: DBOS_W1_WORKFLOW,
    appVersion: DBOS_APP_VERSION,
    applicationName: DBOS_APP_NAME,
  };
  try {
    let next = 0;
    const lane = async () => {
      const conn = new pg.Client({ connectionString: url });
      await conn.connect();
      try {
        while (next < jobs) {
          const from = next;
          next = Math.min(jobs, next + ENQUEUE_CHUNK);
          await conn.query('BEGIN');
          for (let i = from; i < Math.min(jobs, from + ENQUEUE_CHUNK); i++) await client.enqueueInTransaction(conn, options, i);
          await conn.query('COMMIT');
        }
      } finally {
        await conn.end();
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
  } finally {
    await client.destroy();
  }
}

export const dbosW1Label = (o: { workerConcurrency: number; pollMs: number; poolSize: number }) =>
  `DBOS ${packageVersion('@dbos-inc/dbos-sdk')} W1 (queue workerConcurrency ${o.workerConcurrency}, ` +
  `poll ${o.pollMs} ms, pool ${o.poolSize})`;

/** W1: `jobs` one-step workflows enqueued in bulk, then executed by one DBOS process. */
export async function measureDbosW1(opts: DbosW1Options): Promise<PeerResult> {
  const { jobs } = opts;
  const workerConcurrency = opts.workerConcurrency ?? 256;
  const pollMs = opts.pollMs ?? 10;
  const poolSize = opts.poolSize ?? 64;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const env = await setup(opts.url, poolSize);
  let poller: pg.Client | undefined;
  try {
    await withTimeout(enqueueAll(env.url, jobs, opts.enqueueLanes ?? 4), 300_000, 'DBOS enqueue');
    poller = new pg.Client({ connectionString: env.url });
    await poller.connect();
    const queued = await poller.query<{ n: number }>(
      `select count(*)::int as n from dbos.workflow_status where status = 'ENQUEUED'`,
    );
    if (queued.rows[0]?.n !== jobs) throw new Error(`DBOS: expected ${jobs} enqueued workflows, found ${queued.rows[0]?.n}`);

    const t0 = performance.now();
    env.child.proc.send({ type: 'w1', workerConcurrency, pollMs });
    let failure: Error | undefined;
    waitFor(env.child, 'never').catch((err: Error) => (failure = err));
    const deadline = t0 + timeoutMs;
    for (;;) {
      if (failure) throw failure;
      const left = await poller.query<{ any: boolean }>(
        `select exists (select 1 from dbos.workflow_status where status in ('ENQUEUED', 'PENDING')) as any`,
      );
      if (!left.rows[0]?.any) break;
      if (performance.now() > deadline) throw new Error(`DBOS W1 of ${jobs} workflows timed out after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const seconds = (performance.now() - t0) / 1000;
    const done = await poller.query<{ n: number }>(
      `select count(*)::int as n from dbos.workflow_status where status = 'SUCCESS'`,
    );
    if (done.rows[0]?.n !== jobs) throw new Error(`DBOS: ${done.rows[0]?.n} of ${jobs} workflows succeeded`);
    const steps = await poller.query<{ n: number }>(`select count(*)::int as n from dbos.operation_outputs`);
    if (steps.rows[0]?.n !== jobs) throw new Error(`DBOS: ${steps.rows[0]?.n} step outputs for ${jobs} workflows`);
    return result(dbosW1Label({ workerConcurrency, pollMs, poolSize }), jobs, seconds);
  } finally {
    await poller?.end().catch(() => undefined);
    await env.close();
  }
}

/** W2: one workflow of `steps` sequential no-op steps; `jobs` is the step count. */
export async function measureDbosW2(opts: DbosW2Options): Promise<PeerResult> {
  const poolSize = opts.poolSize ?? 64;
  const synchronousCommit = opts.synchronousCommit ?? true;
  const env = await setup(opts.url, poolSize, synchronousCommit);
  try {
    const warm = opts.warm ?? 0;
    env.child.proc.send({ type: 'w2', steps: opts.steps, warm });
    const done = await withTimeout(
      waitFor<{ type: string; ms: number }>(env.child, 'w2-done'),
      opts.timeoutMs ?? 180_000,
      'DBOS W2',
    );
    const poller = new pg.Client({ connectionString: env.url });
    await poller.connect();
    try {
      const steps = await poller.query<{ n: number }>(`select count(*)::int as n from dbos.operation_outputs`);
      if (steps.rows[0]?.n !== opts.steps + warm) throw new Error(`DBOS: ${steps.rows[0]?.n} step outputs for ${opts.steps} + ${warm} steps`);
    } finally {
      await poller.end();
    }
    const sync = synchronousCommit ? '' : ', synchronous_commit off';
    return result(`DBOS ${packageVersion('@dbos-inc/dbos-sdk')} W2 (one workflow of ${opts.steps} steps${sync})`, opts.steps, done.ms / 1000);
  } finally {
    await env.close();
  }
}
