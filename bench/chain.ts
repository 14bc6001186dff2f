/**
 * W2 round after round in one process: a chain of `--steps` no-op steps, each round a fresh run, `--rounds` times
 * (default 8). Prints each round's wall time per step and the process's CPU for the round, then the minimum and
 * median per step over the rounds after the first `--warm` (default 2), while V8 still compiles the hot path. The
 * bench's W2 (`bench/run.ts`) is one such round in a process that ran other work.
 *
 * On SQLite (the default; 1,000 steps) each round has a store of its own. With `--postgres` the rounds run on one
 * PostgreSQL database (a fresh one on `SLUICE_TEST_POSTGRES_URL`, else an embedded server; 300 steps) with an
 * in-process worker, and the last round also counts the statements the store sends, by their text: each is one round
 * trip to the server.
 *
 *   npx tsx bench/chain.ts [--steps 1000] [--rounds 8] [--warm 2] [--postgres]
 */
import pg from 'pg';
import type { StepSpec } from '../src/core/model.js';
import { builtinStepTypes, Engine, normalizePipeline, PostgresStore } from './support/built.js';
import { loadLine } from './support/load.js';
import { startPostgres } from './support/postgres.js';
import { w2 } from './sluice-workloads.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const postgres = process.argv.includes('--postgres');
const steps = arg('steps', postgres ? 300 : 1000);
const rounds = arg('rounds', 8);
const warm = Math.min(arg('warm', 2), rounds - 1);

/** Counts the statements pg clients send while `counting` is set, by their first 100 characters. */
const sent = new Map<string, number>();
let counting = false;
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  if (counting) {
    const q = args[0] as string | { text?: string; name?: string };
    // Values inline (an array of ids) are left out, so that one statement counts as one.
    const text = (typeof q === 'string' ? q : (q.text ?? q.name ?? '?')).replace(/'\{[\d,]*\}'/g, "'{...}'").replace(/\s+/g, ' ').trim().slice(0, 100);
    sent.set(text, (sent.get(text) ?? 0) + 1);
  }
  return query.apply(this, args);
};

/** Rounds of a chain on one PostgreSQL database; each returns ms per step. */
async function onPostgres(round: (run: () => Promise<number>) => Promise<void>): Promise<void> {
  const db = await startPostgres();
  const store = new PostgresStore({ url: db.url });
  try {
    await store.migrate();
    const engine = new Engine({ store, steps: builtinStepTypes({ functions: { noop: () => null } }) });
    const chain: Record<string, StepSpec> = {};
    for (let i = 0; i < steps; i++) chain[`s${i}`] = { uses: 'function', with: { name: 'noop' }, cache: false, ...(i > 0 ? { needs: [`s${i - 1}`] } : {}) };
    const p = await engine.registerPipeline(normalizePipeline({ name: 'chain', steps: chain }, { stepTypes: engine.steps }));
    engine.startWorker({ concurrency: 16 });
    try {
      await round(async () => {
        const start = performance.now();
        const { run } = await engine.startRun(p);
        const done = await engine.waitForRun(run.id);
        if (done.status !== 'succeeded') throw new Error(`chain run ${done.status}`);
        return (performance.now() - start) / steps;
      });
    } finally {
      await engine.close();
    }
  } finally {
    await db.stop();
  }
}

console.log(`W2, a chain of ${steps} steps on ${postgres ? 'PostgreSQL' : 'SQLite'}, ${rounds} rounds in one process (Node ${process.version}); ${loadLine('at the start')}`);
const perStep: number[] = [];
const cells: string[] = [];
const measure = async (run: () => Promise<number>) => {
  for (let i = 0; i < rounds; i++) {
    counting = postgres && i === rounds - 1;
    const cpu0 = process.cpuUsage();
    const ms = await run();
    const cpu = process.cpuUsage(cpu0);
    counting = false;
    perStep.push(ms);
    cells.push(`${ms.toFixed(3)} (${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU)`);
  }
};
if (postgres) await onPostgres(measure);
else await measure(async () => (await w2(steps))[0]!.value);
console.log(`ms per step by round: ${cells.join(', ')}`);
const kept = perStep.slice(warm).sort((a, b) => a - b);
const mid = kept.length / 2;
const median = kept.length % 2 === 1 ? kept[Math.floor(mid)]! : (kept[mid - 1]! + kept[mid]!) / 2;
console.log(`after the first ${warm}: min ${kept[0]!.toFixed(3)} / median ${median.toFixed(3)} ms per step`);
if (postgres) {
  const total = [...sent.values()].reduce((a, b) => a + b, 0);
  console.log(`statements sent in the last round: ${(total / steps).toFixed(2)} per step`);
  for (const [text, n] of [...sent].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / steps >= 0.05)) console.log(`${(n / steps).toFixed(2).padStart(6)}  ${text}`);
}
console.log(loadLine('at the end'));
