/**
 * Sluice on PostgreSQL next to graphile-worker, in one run on one machine (durable embedded PostgreSQL, fsync on):
 *
 * - W1: 20,000 one-step no-op runs created in bulk, then executed by 2 worker processes (child processes
 *   running the engine worker against the same database); timed from the workers' start until every run succeeded.
 * - graphile-worker with batching on and 2 processes (bench/peers), same job count.
 * - Enqueue-to-start after an idle gap: a worker in another process, runs created one at a time from this
 *   process; next to the raw LISTEN/NOTIFY round trip (NOTIFY committed here, received by a listener here).
 *
 *   npx tsx bench/postgres.ts [--runs 20000] [--samples 200] [--idle 20] [--no-peers] [--no-w1] [--no-latency]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { PipelineSpec } from '../src/core/model.js';
import { builtinStepTypes, Engine, normalizePipeline, PostgresStore } from './support/built.js';
import { runGraphileTwoProcessPeer } from './peers/run-peers.js';
import { startPostgres } from './support/postgres.js';
import { loadLine } from './support/load.js';

const childScript = fileURLToPath(new URL('./postgres-worker.ts', import.meta.url));
const now = () => performance.timeOrigin + performance.now();

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
}

interface ChildMessage {
  ready?: boolean;
  started?: number;
  ended?: number;
}

function spawnWorker(url: string, concurrency: number, onMessage?: (m: ChildMessage) => void): Child {
  const proc = fork(childScript, [url, String(concurrency)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise<void>((resolve, reject) => {
    proc.on('message', (m: ChildMessage) => {
      if (m.ready) resolve();
      onMessage?.(m);
    });
    proc.on('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  return { proc, ready };
}

async function stopWorkers(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.proc.once('exit', () => resolve());
          c.proc.kill('SIGTERM');
        }),
    ),
  );
}

async function engineOn(url: string): Promise<{ engine: Engine; store: PostgresStore }> {
  const store = new PostgresStore({ url });
  await store.migrate();
  const engine = new Engine({ store, steps: builtinStepTypes({ functions: { noop: () => null, mark: () => null } }) });
  return { engine, store };
}

async function register(engine: Engine, spec: PipelineSpec) {
  return engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
}

async function countSucceeded(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM runs WHERE status = 'succeeded'`);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/** W1 with 2 worker processes; returns runs/s of execution. */
async function w1(url: string, runs: number): Promise<{ perSecond: number; ms: number; createMs: number }> {
  const { engine } = await engineOn(url);
  try {
    const p = await register(engine, { name: 'w1', max_parallel: 1, steps: { only: { uses: 'function', with: { name: 'noop' }, cache: false } } });
    const createStart = performance.now();
    for (let i = 0; i < runs; i += 1000) await engine.startRuns(p, Array.from({ length: Math.min(1000, runs - i) }, (_, j) => ({ input: { i: i + j } })));
    const createMs = performance.now() - createStart;
    const endedBy = [0, 0];
    let allEnded: () => void = () => undefined;
    const done = new Promise<void>((r) => (allEnded = r));
    const onMessage = (i: number) => (m: ChildMessage) => {
      if (m.ended === undefined) return;
      endedBy[i] = m.ended;
      if (endedBy[0]! + endedBy[1]! >= runs) allEnded();
    };
    const children = [spawnWorker(url, 256, onMessage(0)), spawnWorker(url, 256, onMessage(1))];
    // The children load before the clock starts: the figure is execution only.
    const start = await Promise.all(children.map((c) => c.ready)).then(() => performance.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('W1 on PostgreSQL timed out')), 300_000)))]);
    clearTimeout(timer);
    const ms = performance.now() - start;
    await stopWorkers(children);
    const succeeded = await countSucceeded(url);
    if (succeeded !== runs) throw new Error(`W1: ${succeeded} of ${runs} runs succeeded`);
    return { perSecond: (runs / ms) * 1000, ms, createMs };
  } finally {
    await engine.close();
  }
}

function quantiles(xs: number[]): { p50: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
  return { p50: q(0.5), p99: q(0.99) };
}

/** Enqueue-to-start: a worker in another process, one run at a time from here, `idleMs` idle before each. */
async function latency(url: string, samples: number, idleMs: number): Promise<{ p50: number; p99: number }> {
  const { engine } = await engineOn(url);
  let resolveStart: ((at: number) => void) | null = null;
  const child = spawnWorker(url, 4, (m) => m.started !== undefined && resolveStart?.(m.started));
  try {
    const p = await register(engine, { name: 'lat', steps: { only: { uses: 'function', with: { name: 'mark' }, cache: false } } });
    await child.ready;
    const results: number[] = [];
    for (let i = 0; i < samples + 5; i++) {
      await new Promise((r) => setTimeout(r, idleMs));
      const started = new Promise<number>((r) => (resolveStart = r));
      const t0 = now();
      await engine.startRun(p, { input: { i } });
      const at = await started;
      if (i >= 5) results.push(at - t0);
    }
    return quantiles(results);
  } finally {
    await stopWorkers([child]);
    await engine.close();
  }
}

/**
 * The floor: NOTIFY committed by one connection, received by a LISTENing one, same server, same idle gap. With
 * `durable`, the NOTIFY goes with a one-row INSERT, so the commit waits for its WAL flush first, as a run's creation does.
 */
async function notifyFloor(url: string, samples: number, idleMs: number, durable = false): Promise<{ p50: number; p99: number }> {
  const listener = new pg.Client({ connectionString: url });
  const sender = new pg.Client({ connectionString: url });
  await listener.connect();
  await sender.connect();
  try {
    await listener.query('LISTEN bench_floor');
    if (durable) await sender.query('CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, at bigint NOT NULL)');
    let got: (() => void) | null = null;
    listener.on('notification', () => got?.());
    const results: number[] = [];
    for (let i = 0; i < samples + 5; i++) {
      await new Promise((r) => setTimeout(r, idleMs));
      const received = new Promise<void>((r) => (got = r));
      const t0 = now();
      if (durable) await sender.query(`WITH i AS (INSERT INTO bench_floor (at) VALUES (1) RETURNING id) SELECT pg_notify('bench_floor', '') FROM i`);
      else await sender.query(`SELECT pg_notify('bench_floor', '')`);
      await received;
      if (i >= 5) results.push(now() - t0);
    }
    return quantiles(results);
  } finally {
    await listener.end();
    await sender.end();
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  const runs = arg('runs', 20_000);
  const samples = arg('samples', 200);
  const idleMs = arg('idle', 20);
  const only = (what: string) => !process.argv.includes(`--no-${what}`);
  const lines: string[] = [];
  console.log(loadLine('at the start'));
  if (only('w1')) {
    const db = await startPostgres();
    try {
      const r = await w1(db.url, runs);
      lines.push(`Sluice W1, 2 worker processes        ${fmt(r.perSecond).padStart(8)} runs/s   (${runs} runs in ${fmt(r.ms)} ms; bulk create ${fmt(r.createMs)} ms)`);
      console.log(lines.at(-1));
    } finally {
      await db.stop();
    }
  }
  if (only('w1') && only('peers')) {
    const g = await runGraphileTwoProcessPeer({ jobs: runs, repeat: 1 });
    lines.push(`graphile-worker batched, 2 processes ${fmt(g.perSecond).padStart(8)} jobs/s   (${g.jobs} jobs in ${fmt(g.seconds * 1000)} ms)`);
    console.log(lines.at(-1));
  }
  if (only('latency')) {
    const db2 = await startPostgres();
    try {
      const lat = await latency(db2.url, samples, idleMs);
      const floor = await notifyFloor(db2.url, samples, idleMs);
      const durableFloor = await notifyFloor(db2.url, samples, idleMs, true);
      lines.push(`enqueue-to-start (other process)     p50 ${fmt(lat.p50, 2)} ms  p99 ${fmt(lat.p99, 2)} ms   (${samples} runs, ${idleMs} ms idle before each)`);
      lines.push(`LISTEN/NOTIFY round trip (floor)     p50 ${fmt(floor.p50, 2)} ms  p99 ${fmt(floor.p99, 2)} ms`);
      lines.push(`durable INSERT + NOTIFY round trip   p50 ${fmt(durableFloor.p50, 2)} ms  p99 ${fmt(durableFloor.p99, 2)} ms   (its commit waits for the WAL flush)`);
      console.log(lines.slice(-3).join('\n'));
    } finally {
      await db2.stop();
    }
  }
  console.log(`\n${lines.join('\n')}\n${loadLine('at the end')}`);
}

await main();
