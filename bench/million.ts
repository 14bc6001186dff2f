/**
 * A million one-step runs on one SQLite file: W1's workload at scale. Creates `--runs` runs of a one-step no-op
 * pipeline in bulk (`engine.startRuns`, `--batch` per call), then executes them all with one in-process worker,
 * and prints the create and execute rates, the CPU time per run of each tenth of the work (so a cost that grows
 * with the tables shows), peak RSS (VmHWM) beside the process's RSS after its imports, and the store's size on
 * disk per run, table by table and index by index (SQLite's `dbstat`).
 *
 *   npm run build && npx tsx bench/million.ts [--runs 1000000] [--concurrency 256] [--batch 1000]
 *     [--statements] [--max-seconds 3600] [--dir DIR]
 *
 * `--statements` times every SQLite statement by its text, in the first and the last tenth of the execution (each
 * statement wrapped: it costs a few µs per run more). `--max-seconds` bounds the whole run: past it the bench stops
 * the worker and reports what it did. The temp folder (or `--dir`'s file) is removed at the end, also on Ctrl-C.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { builtinStepTypes, Engine, normalizePipeline, SqliteStore } from './support/built.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '256' },
    batch: { type: 'string', default: '1000' },
    statements: { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '3600' },
    dir: { type: 'string' },
  },
});
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const BATCH = Number(values.batch);
const DEADLINE = Date.now() + Number(values['max-seconds']) * 1000;

/** VmRSS and VmHWM of this process in MB. */
function memory(): { rss: number; hwm: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// Statement timings by text, recorded into whichever map `recordInto` names (null: not recording).
type Timings = Map<string, { calls: number; ms: number }>;
let recordInto: Timings | null = null;
if (values.statements) {
  const proto = Database.prototype as unknown as { prepare(this: Database.Database, sql: string): Database.Statement };
  const prepare = proto.prepare;
  proto.prepare = function (this: Database.Database, sql: string) {
    const statement = prepare.call(this, sql);
    const key = sql.replace(/\s+/g, ' ').slice(0, 110);
    for (const method of ['run', 'all', 'get'] as const) {
      const original = (statement[method] as (...a: unknown[]) => unknown).bind(statement);
      (statement as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        if (!recordInto) return original(...args);
        const start = performance.now();
        try {
          return original(...args);
        } finally {
          const t = recordInto.get(key) ?? { calls: 0, ms: 0 };
          t.calls += 1;
          t.ms += performance.now() - start;
          recordInto.set(key, t);
        }
      };
    }
    return statement;
  };
}

const afterImports = memory();
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'sluice-million-'));
const path = join(dir, 'million.db');
const cleanUp = () => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

/** One line per tenth of a phase: its rate, its CPU per run, the process's RSS and JS heap at its end. */
function tenths(phase: string, total: number) {
  const step = Math.max(1, Math.ceil(total / 10));
  let next = step;
  let last = { at: performance.now(), cpu: cpuMs(), done: 0 };
  return (done: number) => {
    if (done < next && done < total) return;
    const now = { at: performance.now(), cpu: cpuMs(), done };
    const n = now.done - last.done;
    const m = memory();
    console.log(
      `  ${phase} ${fmt(done).padStart(9)}  ${fmt((n / (now.at - last.at)) * 1000).padStart(7)} runs/s  ${fmt(((now.cpu - last.cpu) * 1000) / n).padStart(5)} µs CPU/run  RSS ${fmt(m.rss)} MB (JS heap ${fmt(process.memoryUsage().heapUsed / 2 ** 20)} MB)`,
    );
    last = now;
    while (next <= done) next += step;
  };
}

function printTimings(title: string, timings: Timings, runs: number) {
  const rows = [...timings.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14);
  const total = [...timings.values()].reduce((s, t) => s + t.ms, 0);
  console.log(`\n${title}: SQLite statements ${fmt((total * 1000) / runs, 1)} µs per run (${fmt(runs)} runs)`);
  for (const [sql, t] of rows) console.log(`${fmt(t.calls).padStart(9)} ${fmt((t.ms * 1000) / runs, 1).padStart(7)} µs/run  ${sql}`);
}

/** Bytes on disk by table, indexes with the table they index (SQLite's dbstat virtual table). */
function breakdown(file: string) {
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const rows = db
      .prepare(
        `SELECT s.name AS name, coalesce(m.type, 'table') AS type, coalesce(m.tbl_name, s.name) AS tbl, sum(s.pgsize) AS bytes, sum(s.payload) AS payload
           FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY s.name ORDER BY bytes DESC`,
      )
      .all() as Array<{ name: string; type: string; tbl: string; bytes: number; payload: number }>;
    const counts = db.prepare(`SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM runs WHERE status = 'succeeded') AS succeeded, (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM all_attempts) AS attempts`).get() as Record<string, number>;
    const freelist = db.pragma('freelist_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    return { rows, counts, freeBytes: freelist * pageSize };
  } finally {
    db.close();
  }
}

const steps = builtinStepTypes({ functions: { noop: () => null } });
const store = new SqliteStore({ path });
const engine = new Engine({ store, steps });
let stoppedEarly = false;
try {
  await store.migrate();
  const pipeline = await engine.registerPipeline(
    normalizePipeline({ name: 'million', max_parallel: 1, steps: { only: { uses: 'function', with: { name: 'noop' }, cache: false } } }, { stepTypes: engine.steps }),
  );
  const opened = memory();
  console.log(`${fmt(RUNS)} one-step runs on SQLite (Node ${process.version}, worker concurrency ${CONCURRENCY}, created ${fmt(BATCH)} per call), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`RSS after imports ${fmt(afterImports.rss)} MB (peak so far ${fmt(afterImports.hwm)} MB); store open ${fmt(opened.rss)} MB\n`);

  const createProgress = tenths('create ', RUNS);
  const createStart = performance.now();
  const createCpu = cpuMs();
  const createTimings: Timings = new Map();
  let created = 0;
  while (created < RUNS && Date.now() < DEADLINE) {
    const n = Math.min(BATCH, RUNS - created);
    const first = created;
    // The last tenth is timed statement by statement (`--statements`).
    recordInto = values.statements && created >= RUNS * 0.9 ? createTimings : null;
    await engine.startRuns(pipeline, Array.from({ length: n }, (_, j) => ({ input: { i: first + j } })));
    created += n;
    createProgress(created);
  }
  recordInto = null;
  const createMs = performance.now() - createStart;
  const createCpuMs = cpuMs() - createCpu;
  const afterCreate = memory();
  if (created < RUNS) stoppedEarly = true;

  let ended = 0;
  let failed = 0;
  const execProgress = tenths('execute', created);
  const firstTimings: Timings = new Map();
  const lastTimings: Timings = new Map();
  let lastFrom = 0;
  const allEnded = new Promise<void>((resolve) => {
    if (created === 0) resolve();
    const stop = engine.subscribe((e) => {
      if (e.type !== 'run.succeeded' && e.type !== 'run.failed') return;
      ended += 1;
      if (e.type === 'run.failed') failed += 1;
      if (values.statements) {
        if (ended === Math.ceil(created * 0.1)) recordInto = null;
        if (ended === Math.floor(created * 0.9)) {
          recordInto = lastTimings;
          lastFrom = ended;
        }
      }
      execProgress(ended);
      if (ended === created) {
        stop();
        resolve();
      }
    });
  });
  const overdue = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() >= DEADLINE) {
        stoppedEarly = true;
        resolve();
      }
    }, 1000);
    void allEnded.then(() => clearInterval(timer));
    timer.unref();
  });
  if (values.statements) recordInto = firstTimings;
  const execStart = performance.now();
  const execCpu = cpuMs();
  engine.startWorker({ concurrency: CONCURRENCY });
  await Promise.race([allEnded, overdue]);
  const execMs = performance.now() - execStart;
  const execCpuMs = cpuMs() - execCpu;
  recordInto = null;
  await engine.close();
  const peak = memory();

  const sizeBefore = ['', '-wal'].reduce((s, suffix) => s + (statSync(path + suffix, { throwIfNoEntry: false })?.size ?? 0), 0);
  const { rows, counts, freeBytes } = breakdown(path);
  const size = statSync(path).size;
  const perRun = (bytes: number) => bytes / Math.max(1, counts['runs'] ?? 0);

  console.log(`\ncreate   ${fmt(created)} runs in ${fmt(createMs / 1000, 1)} s: ${fmt((created / createMs) * 1000)} runs/s, ${fmt((createCpuMs * 1000) / Math.max(1, created))} µs CPU per run`);
  console.log(`execute  ${fmt(ended)} runs in ${fmt(execMs / 1000, 1)} s: ${fmt((ended / execMs) * 1000)} runs/s, ${fmt((execCpuMs * 1000) / Math.max(1, ended))} µs CPU per run${failed ? `, ${failed} FAILED` : ''}${stoppedEarly ? ' (STOPPED at --max-seconds)' : ''}`);
  console.log(`peak RSS (VmHWM) ${fmt(peak.hwm)} MB: ${fmt(afterImports.rss)} MB after imports, ${fmt(peak.hwm - afterImports.rss)} MB above it; RSS after create ${fmt(afterCreate.rss)} MB, at the end ${fmt(peak.rss)} MB`);
  console.log(`store: ${fmt(size / 2 ** 20, 1)} MiB after a checkpoint (${fmt(sizeBefore / 2 ** 20, 1)} MiB with the WAL before it), ${fmt(perRun(size))} bytes per run; free pages ${fmt(freeBytes / 2 ** 20, 1)} MiB`);
  console.log(`rows: ${fmt(counts['runs'] ?? 0)} runs (${fmt(counts['succeeded'] ?? 0)} succeeded), ${fmt(counts['attempts'] ?? 0)} attempts, ${fmt(counts['events'] ?? 0)} event rows\n`);

  const byTable = new Map<string, number>();
  for (const r of rows) byTable.set(r.tbl, (byTable.get(r.tbl) ?? 0) + r.bytes);
  console.log(`${'table (with its indexes) / index'.padEnd(36)} ${'MiB'.padStart(8)} ${'bytes/run'.padStart(10)}`);
  for (const [tbl, bytes] of [...byTable.entries()].sort((a, b) => b[1] - a[1])) {
    if (bytes < 64 * 1024) continue;
    console.log(`${tbl.padEnd(36)} ${fmt(bytes / 2 ** 20, 1).padStart(8)} ${fmt(perRun(bytes)).padStart(10)}`);
    for (const r of rows.filter((x) => x.tbl === tbl && x.bytes >= 64 * 1024)) {
      const label = r.type === 'index' ? `index ${r.name}` : r.name.startsWith('sqlite_autoindex') ? `index ${r.name}` : 'rows';
      console.log(`  ${label.padEnd(34)} ${fmt(r.bytes / 2 ** 20, 1).padStart(8)} ${fmt(perRun(r.bytes)).padStart(10)}`);
    }
  }

  if (values.statements) {
    printTimings('create, last tenth', createTimings, Math.max(1, created - Math.floor(RUNS * 0.9)));
    printTimings('execute, first tenth', firstTimings, Math.ceil(created * 0.1));
    printTimings('execute, last tenth', lastTimings, Math.max(1, ended - lastFrom));
  }
} finally {
  await engine.close().catch(() => undefined);
  cleanUp();
}
if (stoppedEarly) process.exit(1);
