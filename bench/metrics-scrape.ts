/**
 * The cost of a `/metrics` scrape as the queue grows: a fresh SQLite file with N queued attempts (runs of ten
 * one-step pipelines, no worker), then the time of `Metrics.render()` (the grouped queue query, the series of
 * every registered pipeline and the process metrics), five times after a warm-up.
 *
 *   npx tsx bench/metrics-scrape.ts [--queued 100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizePipeline } from '../src/core/validate.js';
import { Engine } from '../src/engine/engine.js';
import { Metrics } from '../src/server/metrics.js';
import { builtinStepTypes } from '../src/steps/builtin.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const i = process.argv.indexOf('--queued');
const queued = i > 0 ? Number(process.argv[i + 1]) : 100_000;
const dir = mkdtempSync(join(tmpdir(), 'sluice-metrics-bench-'));
try {
  const store = new SqliteStore({ path: join(dir, 's.db') });
  await store.migrate();
  const engine = new Engine({ store, steps: builtinStepTypes(), tracer: false, artifactsDir: join(dir, 'artifacts') });
  for (let p = 0; p < 10; p += 1) {
    await engine.registerPipeline(normalizePipeline({ name: `p${p}`, steps: { s: { uses: 'command', with: { run: 'true' } } } }, { stepTypes: engine.steps }));
  }
  for (let n = 0; n < queued; n += 1000) await engine.startRuns(`p${(n / 1000) % 10}`, Array.from({ length: Math.min(1000, queued - n) }, () => ({})));
  const metrics = new Metrics(store);
  await metrics.render();
  const times: number[] = [];
  for (let k = 0; k < 5; k += 1) {
    const t = performance.now();
    await metrics.render();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`${queued} queued attempts: /metrics render median ${times[2]!.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times[4]!.toFixed(1)})`);
  await engine.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
