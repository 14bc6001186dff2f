/**
 * Cost of flow control at run start: starts per second of one pipeline (one `function` step, no worker) with no
 * rule, then under each rule, on a fresh SQLite file and (with `--postgres URL`) on a fresh PostgreSQL database
 * created on that server and dropped after. Starts are made by 8 concurrent callers of `engine.startRun`, as
 * requests of a server would; rules with a key spread the starts over 100 keys.
 *
 *   npm run build && npx tsx bench/flow-control.ts [--starts N] [--postgres postgres://user:pass@host:5432/postgres]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { builtinStepTypes, Engine, normalizePipeline, PostgresStore, SqliteStore } from './support/built.js';

const arg = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const STARTS = Number(arg('--starts') ?? 2000);
const CALLERS = 8;
const KEY = '${{ input.customer }}';

const CASES: Array<[string, Record<string, unknown>]> = [
  ['no rule', {}],
  ['rate_limit queue (1 bucket)', { rate_limit: { limit: 1000, period: '1s', mode: 'queue' } }],
  ['rate_limit refuse (100 keys)', { rate_limit: { limit: 1_000_000, period: '1h', key: KEY } }],
  ['throttle (100 keys)', { throttle: { limit: 100, period: '1s', key: KEY } }],
  ['debounce (100 keys)', { debounce: { period: '1h', key: KEY } }],
  ['singleton skip (100 keys)', { singleton: { mode: 'skip', key: KEY } }],
];

async function measure(engine: Engine, name: string, rules: Record<string, unknown>): Promise<number> {
  const steps = builtinStepTypes({ functions: { noop: () => null } });
  await engine.registerPipeline(normalizePipeline({ name, steps: { only: { uses: 'function', with: { name: 'noop' } } }, ...rules }, { stepTypes: steps }));
  let next = 0;
  const caller = async () => {
    while (next < STARTS) {
      const i = next++;
      await engine.startRun(name, { input: { customer: `c${i % 100}`, i } });
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  return STARTS / ((performance.now() - started) / 1000);
}

async function bench(label: string, open: () => Promise<{ engine: Engine; close: () => Promise<void> }>): Promise<void> {
  console.log(`\n${label}: ${STARTS} starts by ${CALLERS} concurrent callers`);
  const { engine, close } = await open();
  try {
    for (const [i, [title, rules]] of CASES.entries()) {
      const perSecond = await measure(engine, `bench-${i}`, rules);
      console.log(`  ${title.padEnd(30)} ${Math.round(perSecond).toString().padStart(6)} starts/s`);
    }
  } finally {
    await close();
  }
}

const steps = builtinStepTypes({ functions: { noop: () => null } });
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-flow-'));
await bench('SQLite', async () => {
  const store = new SqliteStore({ path: join(dir, 'bench.db') });
  await store.migrate();
  const engine = new Engine({ store, steps, artifactsDir: join(dir, 'artifacts') });
  return { engine, close: () => engine.close() };
});
rmSync(dir, { recursive: true, force: true });

const server = arg('--postgres');
if (server) {
  const database = `sluice_bench_flow_${process.pid}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = new URL(server);
    url.pathname = `/${database}`;
    await bench('PostgreSQL', async () => {
      const store = new PostgresStore({ url: url.href });
      await store.migrate();
      const engine = new Engine({ store, steps, artifactsDir: mkdtempSync(join(tmpdir(), 'sluice-bench-flow-')) });
      return { engine, close: () => engine.close() };
    });
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
}
