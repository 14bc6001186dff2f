/**
 * Durable waits at scale, on a fresh SQLite file with one in-process worker:
 *
 * - sleeps: N runs of one `sleep` step (`for: 1s`), created in batches; how late each woke after its time
 *   (`woke_at - until`, from the step's output), and the wall time until every run ended;
 * - CPU while waiting: N `wait_for_event` steps waiting, the process's CPU time (user + system) over 5 s idle;
 * - events: N events, each matching one of the N waits (`match: event.id = input.id`), emitted by 16 senders at once;
 *   the wall time from the first emit until every run ended.
 *
 *   npx tsx bench/waits.ts [--runs 10000] [--idle-ms 5000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinStepTypes, Engine, normalizePipeline, SqliteStore, type RunEvent } from '../src/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const runs = Number(arg('runs', '10000'));
const idleMs = Number(arg('idle-ms', '5000'));

/** Resolves once `count()` reaches `target`, checking every 20 ms. */
async function until(what: string, count: () => number, target: number, timeoutMs = 600_000): Promise<void> {
  const started = Date.now();
  while (count() < target) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: ${count()} of ${target} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-waits-'));
const store = new SqliteStore({ path: join(dir, 'sluice.db') });
await store.migrate();
const steps = builtinStepTypes();
const engine = new Engine({ store, steps, onError: (e) => console.error(e), artifactsDir: join(dir, 'artifacts') });
const counts = new Map<string, number>();
engine.subscribe((e: RunEvent) => counts.set(`${e.pipeline} ${e.type}`, (counts.get(`${e.pipeline} ${e.type}`) ?? 0) + 1));
const count = (pipeline: string, type: string) => () => counts.get(`${pipeline} ${type}`) ?? 0;

try {
  await engine.registerPipeline(normalizePipeline({ name: 'nap', max_parallel: 1, steps: { nap: { uses: 'sleep', with: { for: '1s' } } } }, { stepTypes: steps }));
  await engine.registerPipeline(
    normalizePipeline(
      { name: 'paid', steps: { paid: { uses: 'wait_for_event', with: { event: 'order.paid', match: 'event.id = input.id', timeout: '1h' } } } },
      { stepTypes: steps },
    ),
  );
  engine.startWorker({ concurrency: 256 });

  // Sleeps.
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < runs; i += 1000) {
    const created = await engine.startRuns('nap', Array.from({ length: Math.min(1000, runs - i) }, () => ({ input: null })));
    ids.push(...created.map((c) => c.run.id));
  }
  const createdMs = performance.now() - t0;
  await until('sleeping runs to end', count('nap', 'run.succeeded'), runs);
  const sleepWall = performance.now() - t0;
  const late: number[] = [];
  for (const id of ids) {
    const out = (await store.listSteps(id))[0]!.output as { until: string; woke_at: string };
    late.push(Date.parse(out.woke_at) - Date.parse(out.until));
  }
  late.sort((a, b) => a - b);
  console.log(`sleep: ${runs} runs of sleep 1s, created in ${(createdMs / 1000).toFixed(2)} s, all ended ${(sleepWall / 1000).toFixed(2)} s after the first was created`);
  console.log(`sleep: woke after its time by p50 ${percentile(late, 50)} ms, p99 ${percentile(late, 99)} ms, max ${late[late.length - 1]} ms (min ${late[0]} ms)`);

  // Waits: create them, let each look back once, then measure CPU while they wait.
  for (let i = 0; i < runs; i += 1000) {
    await engine.startRuns('paid', Array.from({ length: Math.min(1000, runs - i) }, (_, j) => ({ input: { id: `order-${i + j}` } })));
  }
  await until('waits to begin', count('paid', 'step.waiting'), runs);
  // Each wait runs once more at once, to look back for events; after that it holds nothing.
  await until('waits to look back', count('paid', 'step.started'), 2 * runs);
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await new Promise((r) => setTimeout(r, idleMs));
  const cpu = process.cpuUsage(cpu0);
  const idleWall = performance.now() - wall0;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(`idle: ${runs} waits waiting, process CPU ${cpuMs.toFixed(0)} ms over ${(idleWall / 1000).toFixed(1)} s (${((cpuMs / idleWall) * 100).toFixed(2)}% of one core; the worker polls every 250 ms)`);

  // Events.
  // Events arrive as webhooks do: several at once (16 senders).
  const e0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < runs; i = next++) await engine.emit('order.paid', { id: `order-${i}`, amount: i });
  }));
  const emitMs = performance.now() - e0;
  await until('woken runs to end', count('paid', 'run.succeeded'), runs);
  const eventsWall = performance.now() - e0;
  console.log(`events: ${runs} events matched ${count('paid', 'step.woken')()} waits; emitted in ${(emitMs / 1000).toFixed(2)} s, every run ended ${(eventsWall / 1000).toFixed(2)} s after the first emit`);
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}
