/**
 * Where W2's time goes, statement by statement: runs the W2 chain (with `--latency`, the enqueue-to-start
 * workload; with `--w1`, W1's execution, 20,000 runs at concurrency 256) on the built package and times every SQLite
 * statement it executes, by its text, in microseconds per step (or per run). Every prepared statement's `run`/`all`/`get` is wrapped; the figures exclude the engine's own
 * JavaScript and the transactions' BEGIN/COMMIT, which run outside them.
 *
 *   npm run build && npx tsx bench/statements.ts [--steps 2000] [--latency | --w1] [--top 16]
 */
import Database from 'better-sqlite3';
import { parseArgs } from 'node:util';
import { latency, w1, w2 } from './sluice-workloads.js';

const { values } = parseArgs({ options: {
    steps: { type: 'string', default: '2000' },
    latency: { type: 'boolean', default: false },
    w1: { type: 'boolean', default: false },
    top: { type: 'string', default: '16' },
  }, });
const steps = Number(values.steps);

const timings = new Map<string, { calls: number; ms: number }>();
let recording = false;
const proto = Database.prototype as unknown as { prepare(this: Database.Database, sql: string): Database.Statement };
const prepare = proto.prepare;
proto.prepare = function (this: Database.Database, sql: string) {
  const statement = prepare.call(this, sql);
  const key = sql.replace(/\s+/g, ' ').slice(0, 100);
  for (const method of ['run', 'all', 'get'] as const) {
    const original = (statement[method] as (...a: unknown[]) => unknown).bind(statement);
    (statement as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const start = performance.now();
      try {
        return original(...args);
      } finally {
        const ms = performance.now() - start;
        if (recording) {
          const t = timings.get(key) ?? { calls: 0, ms: 0 };
          t.calls += 1;
          t.ms += ms;
          timings.set(key, t);
        }
      }
    };
  }
  return statement;
};

const unit = values.latency || values.w1 ? 'run' : 'step';
const W1_RUNS = 20_000;
let figure: { name: string; value: number; unit: string };
let count = steps;
if (values.w1) {
  // A first, smaller round warms up the code; only the second one's execution (not its bulk creation) is timed.
  await w1(2000, 256);
  figure = (await w1(W1_RUNS, 256, (executing) => (recording = executing)))[1]!;
  count = W1_RUNS;
} else {
  if (values.latency) await latency(50);
  else await w2(300);
  recording = true;
  figure = values.latency ? (await latency(steps))[0]! : (await w2(steps))[0]!;
  recording = false;
}
const rows = [...timings.entries()].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((sum, [, t]) => sum + t.ms, 0);
console.log(`${figure.name}: ${figure.value.toFixed(2)} ${figure.unit}; SQLite statements ${((total * 1000) / count).toFixed(1)} µs per ${unit}\n`);
console.log(`${'calls'.padStart(7)} ${`µs/${unit}`.padStart(9)}  statement`);
for (const [sql, t] of rows.slice(0, Number(values.top))) console.log(`${String(t.calls).padStart(7)} ${((t.ms * 1000) / count).toFixed(1).padStart(9)}  ${sql}`);
