/**
 * What W1 writes on PostgreSQL, per run: on a durable embedded PostgreSQL of its own (so that the server's WAL and
 * CPU are this run's only), one-step no-op runs are created in bulk, then executed by 2 worker processes
 * (bench/postgres-worker.ts, concurrency 256 each). Printed per run of the execution phase: WAL bytes and records
 * (pg_walinspect) and CPU time of the server's processes (/proc); the table counters of runs, steps, attempts and
 * events (updates, HOT updates, sequential and index scans); and the WAL blocks per run by relation
 * (pg_walinspect), which names the tables and indexes the run path writes.
 *
 * The same for graphile-worker batched with 2 processes (bench/peers), jobs added in bulk, on a database of its own
 * on the same server, measured after Sluice's (`--no-peers` leaves it out).
 *
 *   npx tsx bench/postgres-writes.ts [--runs 10000] [--no-peers]
 *
 * Linux only (reads /proc). Takes the engine from dist/ (`npm run build` first), as bench/postgres.ts does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { PipelineSpec } from '../src/core/model.js';
import { builtinStepTypes, Engine, normalizePipeline, PostgresStore } from './support/built.js';
import { measureGraphileWorker } from './peers/graphile.js';
import { startPostgres } from './support/postgres.js';

const workerScript = fileURLToPath(new URL('./postgres-worker.ts', import.meta.url));
const CLOCK_TICKS = 100;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** User + system CPU seconds of a process (0 once it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The embedded server's processes: its postmaster (started in the bench's temp dir, on `port`) and its children. */
function serverPids(port: string): number[] {
  const procs: Array<{ pid: number; ppid: number; cmd: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      procs.push({ pid: Number(name), ppid, cmd });
    } catch {
      // the process ended while we looked
    }
  }
  const master = procs.find((p) => p.cmd.includes('sluice-bench-pg-') && p.cmd.includes(port));
  if (!master) throw new Error('the embedded server was not found in /proc');
  return [master.pid, ...procs.filter((p) => p.ppid === master.pid).map((p) => p.pid)];
}

const serverCpu = (port: string) => serverPids(port).reduce((s, pid) => s + cpuSeconds(pid), 0);

async function createRuns(url: string, runs: number): Promise<void> {
  const store = new PostgresStore({ url });
  await store.migrate();
  const engine = new Engine({ store, steps: builtinStepTypes({ functions: { noop: () => null } }) });
  try {
    const spec: PipelineSpec = { name: 'w1', max_parallel: 1, steps: { only: { uses: 'function', with: { name: 'noop' }, cache: false } } };
    const p = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
    for (let i = 0; i < runs; i += 1000) await engine.startRuns(p, Array.from({ length: Math.min(1000, runs - i) }, (_, j) => ({ input: { i: i + j } })));
  } finally {
    await engine.close();
  }
}

/** Starts 2 worker processes; resolves once both are ready, with a promise of every run ended. */
async function startWorkers(url: string, runs: number): Promise<{ kids: ChildProcess[]; done: Promise<void> }> {
  const ended = [0, 0];
  let allEnded: () => void = () => undefined;
  const done = new Promise<void>((r) => (allEnded = r));
  const kids = [0, 1].map((i) => {
    const kid = fork(workerScript, [url, '256'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    kid.on('message', (m: { ended?: number }) => {
      if (m.ended === undefined) return;
      ended[i] = m.ended;
      if (ended[0]! + ended[1]! >= runs) allEnded();
    });
    return kid;
  });
  await Promise.all(kids.map((k) => new Promise<void>((r) => k.on('message', (m: { ready?: boolean }) => m.ready && r()))));
  return { kids, done };
}

const stopWorkers = (kids: ChildProcess[]) => Promise.all(kids.map((k) => new Promise<void>((r) => (k.once('exit', () => r()), k.kill('SIGTERM')))));

const lsn = async (c: pg.Client) => (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn;

/** WAL bytes and records between two positions (read from the WAL itself: pg_stat_wal lags behind busy backends). */
async function walBetween(c: pg.Client, from: string, to: string): Promise<{ bytes: number; records: number }> {
  const { rows } = await c.query<{ bytes: string; records: string }>(
    `SELECT pg_wal_lsn_diff($2, $1) AS bytes, (SELECT sum(count) FROM pg_get_wal_stats($1, $2)) AS records`,
    [from, to],
  );
  return { bytes: Number(rows[0]!.bytes), records: Number(rows[0]!.records) };
}

interface Window {
  lsn: string;
  cpu: number;
  t0: number;
}

/** The server's WAL position and CPU now: where a measured window opens or closes. */
async function mark(c: pg.Client, port: string): Promise<Window> {
  return { lsn: await lsn(c), cpu: serverCpu(port), t0: performance.now() };
}

interface Report {
  /** What ran, and how many runs or jobs. */
  name: string;
  count: number;
  ms: number;
  wal: { bytes: number; records: number };
  cpuSeconds: number;
  tables: string[];
  blocks: string;
}

/**
 * What the server did between two marks (taken while the workers were connected: a backend's CPU is gone with its
 * process): WAL bytes and records, its CPU, and, read once the workers are gone, the counters of the tables of
 * `schema` that changed (on `c`, connected to the measured database, whose pg_class also names the WAL's blocks).
 */
async function report(c: pg.Client, from: Window, to: Window, name: string, count: number, schema: string): Promise<Report> {
  // pg_walinspect reads only flushed WAL (claims commit without waiting for the flush).
  while ((await c.query<{ behind: boolean }>('SELECT pg_current_wal_flush_lsn() < $1 AS behind', [to.lsn])).rows[0]!.behind) await new Promise((r) => setTimeout(r, 50));
  const wal = await walBetween(c, from.lsn, to.lsn);
  // Counters reach pg_stat_user_tables when a backend's transaction ends.
  await new Promise((r) => setTimeout(r, 700));
  const tables = (
    await c.query<Record<string, string>>(
      `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan FROM pg_stat_user_tables
       WHERE schemaname = $1 AND n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname`,
      [schema],
    )
  ).rows.map((t) => `${t.relname}: inserts ${t.n_tup_ins}, updates ${t.n_tup_upd} (HOT ${t.n_tup_hot_upd}), deletes ${t.n_tup_del}, seq scans ${t.seq_scan}, index scans ${t.idx_scan}`);
  const blocks = await c.query<{ rel: string; n: string }>(
    `SELECT coalesce(cl.relname, b.relfilenode::text) AS rel, count(*) AS n FROM pg_get_wal_block_info($1, $2) b
     LEFT JOIN pg_class cl ON cl.relfilenode = b.relfilenode GROUP BY 1 ORDER BY 2 DESC LIMIT 20`,
    [from.lsn, to.lsn],
  );
  const blocksPer = blocks.rows.map((r) => `${r.rel} ${(Number(r.n) / count).toFixed(2)}`).join(', ');
  return { name, count, ms: to.t0 - from.t0, wal, cpuSeconds: to.cpu - from.cpu, tables, blocks: blocksPer };
}

/** Statistics as a server that has run a while has them, and a checkpoint so that every measurement pays the same full-page images. */
async function settle(c: pg.Client): Promise<void> {
  await c.query('ANALYZE');
  await c.query('CHECKPOINT');
  await c.query('SELECT pg_stat_reset()');
  await c.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
}

async function measureSluice(url: string, port: string, runs: number): Promise<Report> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await createRuns(url, runs);
    await settle(c);
    // The workers claim as soon as they start, before they say they are ready: WAL and the server's CPU are
    // counted from before they start. Their own CPU is not reported: most of it is loading the code.
    const from = await mark(c, port);
    const { kids, done } = await startWorkers(url, runs);
    await done;
    const to = await mark(c, port);
    await stopWorkers(kids);
    return await report(c, from, to, 'Sluice (2 worker processes × concurrency 256)', runs, 'public');
  } finally {
    await c.end();
  }
}

/** graphile-worker batched, 2 processes, as bench/postgres.ts runs it, on a database of its own on the same server. */
async function measureGraphile(serverUrl: string, port: string, jobs: number): Promise<Report> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE graphile_writes');
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = '/graphile_writes';
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    let from: Window | undefined;
    let to: Window | undefined;
    const peer = await measureGraphileWorker({
      jobs,
      concurrency: 10,
      processes: 2,
      url: url.toString(),
      beforeStart: async () => {
        await settle(c);
        from = await mark(c, port);
      },
      afterDone: async () => {
        to = await mark(c, port);
      },
    });
    return await report(c, from!, to!, peer.name, jobs, 'graphile_worker');
  } finally {
    await c.end();
  }
}

function print(reports: Report[]): void {
  for (const [i, r] of reports.entries()) console.log(`(${i + 1}) ${r.name}: ${r.count} in ${r.ms.toFixed(0)} ms from the workers' start`);
  const row = (label: string, f: (r: Report) => string) => console.log(label.padEnd(28) + reports.map((r) => f(r).padStart(12)).join(''));
  row('per run (1) or job (2)', (r) => `(${reports.indexOf(r) + 1})`);
  row('WAL bytes', (r) => (r.wal.bytes / r.count).toFixed(0));
  row('WAL records', (r) => (r.wal.records / r.count).toFixed(1));
  row('server CPU ms', (r) => ((r.cpuSeconds * 1000) / r.count).toFixed(3));
  row('per second', (r) => ((r.count / r.ms) * 1000).toFixed(0));
  for (const [i, r] of reports.entries()) {
    console.log(`(${i + 1}) tables: ${r.tables.join('; ')}`);
    console.log(`(${i + 1}) WAL blocks per ${i === 0 ? 'run' : 'job'}: ${r.blocks}`);
  }
}

async function main(): Promise<void> {
  const runs = arg('runs', 10_000);
  // A server of its own even when the tests' server is named: WAL and CPU of a shared server count others' work.
  delete process.env.SLUICE_TEST_POSTGRES_URL;
  const db = await startPostgres();
  const port = new URL(db.url).port;
  try {
    const reports = [await measureSluice(db.url, port, runs)];
    if (!process.argv.includes('--no-peers')) reports.push(await measureGraphile(db.url, port, runs));
    print(reports);
  } finally {
    await db.stop();
  }
}

await main();
