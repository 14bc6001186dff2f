/**
 * A `sluice worker`-style child process for bench/postgres.ts: one engine worker on the given PostgreSQL
 * database. `noop` returns at once; `mark` reports (over IPC) the wall-clock time at which it started; the
 * count of runs this worker ended goes to the parent too, so that waiting for W1 to finish puts no load on the database.
 *
 *   node --import tsx bench/postgres-worker.ts <url> <concurrency>
 */
import { builtinStepTypes, Engine, PostgresStore } from './support/built.js';

const [url, concurrencyArg] = process.argv.slice(2);
if (!url) throw new Error('usage: postgres-worker.ts <url> <concurrency>');
const now = () => performance.timeOrigin + performance.now();

const store = new PostgresStore({ url, poolSize: 4 });
const steps = builtinStepTypes({
  functions: {
    noop: () => null,
    mark: () => {
      process.send?.({ started: now() });
      return null;
    },
  },
});
const engine = new Engine({ store, steps });
// Runs this worker ended, reported to the parent every 5 ms while it changes (the parent sums both workers).
let ended = 0;
let reported = 0;
engine.subscribe((e) => {
  if (e.type === 'run.succeeded' || e.type === 'run.failed') ended += 1;
});
setInterval(() => {
  if (ended === reported) return;
  reported = ended;
  process.send?.({ ended });
}, 5).unref();
engine.startWorker({ concurrency: Number(concurrencyArg ?? 256), pollMs: 1000 });
// Give the LISTEN connection a moment before telling the parent we are ready.
setTimeout(() => process.send?.({ ready: true }), 300);
const stop = () => void engine.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('disconnect', stop);
