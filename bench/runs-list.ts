/**
 * `GET /api/runs` as the runs table grows: a server over a fresh SQLite file holding N runs (20,000 and 40,000
 * by default) of two pipelines, no worker; clients on 127.0.0.1 ask for the first page (the default 100 runs),
 * the first page of one pipeline, and of one status, `--concurrency` requests in flight over keep-alive
 * connections. Prints calls/s per query and N.
 *
 *   npm run build && npx tsx bench/runs-list.ts [--runs 20000,40000] [--calls 400] [--concurrency 8] [--dist DIR]
 *
 * `--dist` loads another build of Sluice (e.g. of an earlier commit) to compare before and after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Library from '../src/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const sizes = arg('runs', '20000,40000').split(',').map(Number);
const calls = Number(arg('calls', '400'));
const concurrency = Number(arg('concurrency', '8'));
const dist = resolve(arg('dist', join(import.meta.dirname, '..', 'dist')));
const lib = (await import(pathToFileURL(join(dist, 'index.js')).href)) as typeof Library;

const QUERIES = { 'first page': '/api/runs', 'one pipeline': '/api/runs?pipeline=beta', 'one status': '/api/runs?status=cancelled' };

function get(agent: Agent, base: string, path: string): Promise<void> {
  return new Promise((done, fail) => {
    request(`${base}${path}`, { agent }, (res) => {
      if (res.statusCode !== 200) fail(new Error(`${path}: HTTP ${res.statusCode}`));
      res.resume();
      res.on('end', done);
    })
      .on('error', fail)
      .end();
  });
}

async function callsPerSecond(base: string, path: string): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) await get(agent, base, path);
    }),
  );
  agent.destroy();
  return calls / ((performance.now() - started) / 1000);
}

async function seed(engine: Library.Engine, runs: number): Promise<void> {
  const steps = { a: { uses: 'function', with: { module: './none.js', export: 'none' } } };
  for (const name of ['alpha', 'beta']) await engine.registerPipeline(lib.normalizePipeline({ name, steps }, { stepTypes: engine.steps }));
  for (let i = 0; i < runs; i += 1000) {
    // Three runs in four of alpha; every 50th run cancelled, so a status page is not the newest runs.
    const created = await engine.startRuns(i % 4000 === 3000 ? 'beta' : 'alpha', Array.from({ length: Math.min(1000, runs - i) }, (_, j) => ({ input: { i: i + j } })));
    for (const [j, c] of created.entries()) if (j % 50 === 0) await engine.cancel(c.run.id);
  }
}

console.log(`GET /api/runs, ${calls} calls per figure, ${concurrency} in flight, build ${dist}`);
for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-runs-list-'));
  const store = new lib.SqliteStore({ path: join(dir, 'sluice.db') });
  await store.migrate();
  const engine = new lib.Engine({ store, steps: lib.builtinStepTypes(), onError: () => {}, artifactsDir: join(dir, 'artifacts') });
  try {
    await seed(engine, n);
    const app = await lib.createServer({ engine, auth: 'off' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const figures: string[] = [];
    for (const [label, path] of Object.entries(QUERIES)) {
      await callsPerSecond(base, path); // warm-up
      figures.push(`${label} ${Math.round(await callsPerSecond(base, path))} calls/s`);
    }
    console.log(`${n.toLocaleString('en-US').padStart(7)} runs: ${figures.join(', ')}`);
    await app.close();
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
