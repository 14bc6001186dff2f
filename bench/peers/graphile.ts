/**
 * graphile-worker peer: no-op jobs on PostgreSQL with batching on.
 *
 * Installs graphile-worker's schema (runMigrations), adds the jobs up front
 * with the `addJobs` helper (graphile_worker.add_jobs, in chunks), then starts
 * the clock and runs the worker(s): in this process for `processes: 1`, or in
 * N child processes (bench/peers/graphile-child.ts) that are loaded and
 * connected-ready before the clock starts. The clock stops when the jobs table
 * is empty (graphile-worker deletes a job when it completes).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { makeWorkerUtils, run, runMigrations, type Runner } from 'graphile-worker';
import { startPostgres, type PostgresDatabase } from '../support/postgres.js';
import { packageVersion } from '../support/versions.js';
import { GRAPHILE_BATCHING_LABEL, graphileRunnerOptions, silentLogger } from './graphile-config.js';
import { result, withTimeout, type PeerResult } from './types.js';
import { spawnPeerChild, stopPeerChild, waitForMessage, type PeerChild } from './child-process.js';

export interface GraphileOptions {
  jobs: number;
  /** Concurrency of each worker process. */
  concurrency: number;
  /** Worker processes; 1 runs in this process, more spawn child processes. Default 1. */
  processes?: number;
  /** Use this (empty) database instead of starting one with startPostgres(). */
  url?: string;
  /** Jobs per addJobs call. Default 1000. */
  chunk?: number;
  /** Bound on the timed run. Default 180 s. */
  timeoutMs?: number;
  /** Called once the jobs are queued and the worker processes loaded, just before the clock starts. */
  beforeStart?: () => Promise<void>;
  /** Called as soon as every job is done, before the workers stop. */
  afterDone?: () => Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const childScript = path.join(here, 'graphile-child.ts');
const POLL_MS = 10;

interface Child extends PeerChild {
  /** Jobs the child reported as run successfully when it stopped. */
  succeeded?: number;
}

function spawnChild(url: string, concurrency: number): Child {
  const child: Child = spawnPeerChild(childScript, [url, String(concurrency)], repoRoot, 'graphile-worker child');
  child.proc.on('message', (msg: { type?: string; succeeded?: number }) => {
    if (msg.type === 'stopped') child.succeeded = msg.succeeded;
  });
  return child;
}

const waitFor = (child: Child, type: string): Promise<unknown> => waitForMessage(child, type);
const stopChild = stopPeerChild;

export async function measureGraphileWorker(opts: GraphileOptions): Promise<PeerResult> {
  const { jobs, concurrency } = opts;
  const processes = opts.processes ?? 1;
  const chunk = opts.chunk ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  if (!Number.isInteger(processes) || processes < 1) throw new Error(`processes must be a positive integer`);
  const name =
    `graphile-worker ${packageVersion('graphile-worker')} (${processes} process${processes > 1 ? 'es' : ''} ` +
    `× concurrency ${concurrency}, ${GRAPHILE_BATCHING_LABEL})`;

  let db: PostgresDatabase | undefined;
  let poller: pg.Client | undefined;
  let runner: Runner | undefined;
  let pool: pg.Pool | undefined;
  let succeeded = 0;
  const children: Child[] = [];
  try {
    if (!opts.url) db = await startPostgres();
    const url = opts.url ?? db!.url;
    await withTimeout(runMigrations({ connectionString: url, logger: silentLogger }), 60_000, 'graphile-worker migrations');

    const utils = await makeWorkerUtils({ connectionString: url, logger: silentLogger });
    try {
      for (let i = 0; i < jobs; i += chunk) {
        const specs = [];
        for (let j = i; j < Math.min(jobs, i + chunk); j++) specs.push({ identifier: 'noop', payload: { i: j } });
        await withTimeout(utils.addJobs(specs), 60_000, 'graphile-worker addJobs');
      }
    } finally {
      await utils.release();
    }

    poller = new pg.Client({ connectionString: url });
    await poller.connect();
    const counted = await poller.query<{ n: number }>('select count(*)::int as n from graphile_worker._private_jobs');
    if (counted.rows[0]?.n !== jobs) {
      throw new Error(`graphile-worker: expected ${jobs} queued jobs, found ${counted.rows[0]?.n}`);
    }

    let failure: Error | undefined;
    if (processes > 1) {
      for (let i = 0; i < processes; i++) children.push(spawnChild(url, concurrency));
      await withTimeout(Promise.all(children.map((c) => waitFor(c, 'ready'))), 60_000, 'graphile-worker children start');
      for (const c of children) {
        c.proc.on('message', (msg: { type?: string; message?: string }) => {
          if (msg.type === 'error') failure ??= new Error(`graphile-worker child failed: ${msg.message ?? ''}`);
        });
        c.proc.once('exit', (code) => {
          failure ??= new Error(`graphile-worker child exited early (code ${code})\n${c.stderr.trim()}`);
        });
      }
    }

    await opts.beforeStart?.();
    const t0 = performance.now();
    if (processes > 1) {
      for (const c of children) c.proc.send({ type: 'go' });
    } else {
      // Our own pool, ended (awaited) before the server stops: graphile-worker ends the pool it makes
      // without waiting and removes its error handlers first, so stopping PostgreSQL right after could
      // raise an unhandled 'error' from a still-connected idle client.
      const { connectionString: _unused, ...options } = graphileRunnerOptions(url, concurrency);
      pool = new pg.Pool({ connectionString: url, max: options.maxPoolSize ?? 10 });
      pool.on('error', () => undefined);
      pool.on('connect', (client) => client.on('error', () => undefined));
      runner = await run({ ...options, pgPool: pool });
      runner.events.on('job:success', () => {
        succeeded += 1;
      });
      runner.promise.catch((err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      });
    }
    const deadline = t0 + timeoutMs;
    for (let polls = 1; ; polls++) {
      if (failure) throw failure;
      const left = await poller.query<{ any: boolean }>(
        'select exists (select 1 from graphile_worker._private_jobs) as any',
      );
      if (!left.rows[0]?.any) break;
      if (polls % 100 === 0) {
        const failed = await poller.query<{ n: number }>(
          'select count(*)::int as n from graphile_worker._private_jobs where last_error is not null',
        );
        if ((failed.rows[0]?.n ?? 0) > 0) throw new Error(`graphile-worker: ${failed.rows[0]?.n} jobs failed`);
      }
      if (performance.now() > deadline) {
        throw new Error(`graphile-worker run of ${jobs} jobs timed out after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const seconds = (performance.now() - t0) / 1000;
    await opts.afterDone?.();

    // Cross-check: every job ran (not just vanished from the table).
    if (runner) {
      await withTimeout(runner.stop(), 15_000, 'graphile-worker stop');
      runner = undefined;
    }
    await Promise.all(children.map((c) => stopChild(c)));
    const ran = succeeded + children.reduce((sum, c) => sum + (c.succeeded ?? 0), 0);
    if (ran !== jobs) throw new Error(`graphile-worker: table empty but ${ran} of ${jobs} jobs reported run`);
    return result(name, jobs, seconds);
  } finally {
    if (runner) {
      const r = runner;
      await withTimeout(r.stop(), 15_000, 'graphile-worker stop').catch(() => r.kill().catch(() => undefined));
    }
    await Promise.all(children.map((c) => stopChild(c)));
    await poller?.end().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await db?.stop();
  }
}
