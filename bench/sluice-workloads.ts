/**
 * Sluice's side of the benchmarks: W1 (many one-step runs), W2 (a long chain), W3 (wide fan-in) and
 * in-process enqueue-to-start latency, all on an embedded SQLite file (WAL, synchronous=NORMAL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelineSpec, StepSpec } from '../src/core/model.js';
import { builtinStepTypes, Engine, normalizePipeline, SqliteStore } from './support/built.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  detail?: string;
}

interface Harness {
  engine: Engine;
  started: { at: number | null };
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const store = new SqliteStore({ path: join(dir, 'bench.db') });
  await store.migrate();
  const started: { at: number | null } = { at: null };
  const steps = builtinStepTypes({
    functions: {
      noop: () => null,
      mark: () => {
        started.at ??= performance.now();
        return null;
      },
    },
  });
  const engine = new Engine({ store, steps });
  return {
    engine,
    started,
    async close() {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const noop = (extra: Partial<StepSpec> = {}): StepSpec => ({ uses: 'function', with: { name: 'noop' }, cache: false, ...extra });

async function register(engine: Engine, spec: PipelineSpec) {
  return engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
}

/** Resolves when `count` runs have ended, counting run.succeeded/run.failed events of this process. */
function runsEnded(engine: Engine, count: number): Promise<number> {
  return new Promise((resolve) => {
    let ended = 0;
    let failed = 0;
    const stop = engine.subscribe((e) => {
      if (e.type === 'run.succeeded' || e.type === 'run.failed') {
        ended += 1;
        if (e.type === 'run.failed') failed += 1;
        if (ended === count) {
          stop();
          resolve(failed);
        }
      }
    });
  });
}

/** W1: `runs` runs of a one-step no-op pipeline, created in bulk, then executed by one worker. */
export async function w1(runs = 20_000, concurrency = 64, onExecute?: (executing: boolean) => void): Promise<Figure[]> {
  const h = await harness();
  try {
    const p = await register(h.engine, { name: 'w1', max_parallel: 1, steps: { only: noop() } });
    const createStart = performance.now();
    for (let i = 0; i < runs; i += 1000) {
      await h.engine.startRuns(p, Array.from({ length: Math.min(1000, runs - i) }, (_, j) => ({ input: { i: i + j } })));
    }
    const createMs = performance.now() - createStart;
    const done = runsEnded(h.engine, runs);
    onExecute?.(true);
    const execStart = performance.now();
    h.engine.startWorker({ concurrency });
    const failed = await done;
    const execMs = performance.now() - execStart;
    onExecute?.(false);
    if (failed > 0) throw new Error(`W1: ${failed} runs failed`);
    return [
      { name: 'W1 create (bulk)', value: (runs / createMs) * 1000, unit: 'runs/s', detail: `${runs} runs in ${createMs.toFixed(0)} ms` },
      { name: 'W1 execute', value: (runs / execMs) * 1000, unit: 'runs/s', detail: `${runs} runs in ${execMs.toFixed(0)} ms, worker concurrency ${concurrency}` },
    ];
  } finally {
    await h.close();
  }
}

/** W2: one run of a chain of `length` dependent no-op steps, after an untimed chain of `warm` (none when 0). */
export async function w2(length = 1000, warm = 0): Promise<Figure[]> {
  const h = await harness();
  try {
    const chain = (n: number) => {
      const steps: Record<string, StepSpec> = {};
      for (let i = 0; i < n; i++) steps[`s${i}`] = noop(i === 0 ? {} : { needs: [`s${i - 1}`] });
      return steps;
    };
    const p = await register(h.engine, { name: 'w2', steps: chain(length) });
    h.engine.startWorker({ concurrency: 16 });
    if (warm > 0) {
      // Untimed, as every engine's W2 in the bench: a shorter chain first, in the same process and store.
      const { run } = await h.engine.startRun(await register(h.engine, { name: 'w2-warm', steps: chain(warm) }));
      if ((await h.engine.waitForRun(run.id)).status !== 'succeeded') throw new Error('W2 warm-up run failed');
    }
    const start = performance.now();
    const { run } = await h.engine.startRun(p);
    const done = await h.engine.waitForRun(run.id);
    const ms = performance.now() - start;
    if (done.status !== 'succeeded') throw new Error(`W2 run ${done.status}`);
    return [{ name: `W2 chain of ${length}`, value: ms / length, unit: 'ms/step', detail: `${ms.toFixed(0)} ms in all` }];
  } finally {
    await h.close();
  }
}

/** W3: one run of `width` independent steps joined by one final step. */
export async function w3(width: number): Promise<Figure> {
  const h = await harness();
  try {
    const steps: Record<string, StepSpec> = {};
    for (let i = 0; i < width; i++) steps[`s${i}`] = noop();
    steps['join'] = noop({ needs: Object.keys(steps) });
    const p = await register(h.engine, { name: 'w3', max_parallel: 256, steps });
    h.engine.startWorker({ concurrency: 256 });
    const start = performance.now();
    const { run } = await h.engine.startRun(p);
    const done = await h.engine.waitForRun(run.id);
    const ms = performance.now() - start;
    if (done.status !== 'succeeded') throw new Error(`W3 run ${done.status}`);
    return { name: `W3 fan-in of ${width}`, value: (ms * 1000) / (width + 1), unit: 'µs/step', detail: `${ms.toFixed(0)} ms in all` };
  } finally {
    await h.close();
  }
}

/** Enqueue-to-start latency in-process: time from startRun to the step's first line, with an idle worker. */
export async function latency(samples = 200, idleMs = 5): Promise<Figure[]> {
  const h = await harness();
  try {
    const p = await register(h.engine, { name: 'lat', steps: { only: { uses: 'function', with: { name: 'mark' }, cache: false } } });
    h.engine.startWorker({ concurrency: 4, pollMs: 1000 });
    const results: number[] = [];
    for (let i = 0; i < samples; i++) {
      await new Promise((r) => setTimeout(r, idleMs));
      h.started.at = null;
      const t0 = performance.now();
      const { run } = await h.engine.startRun(p, { input: { i } });
      await h.engine.waitForRun(run.id);
      results.push((h.started.at ?? t0) - t0);
    }
    results.sort((a, b) => a - b);
    const q = (f: number) => results[Math.min(results.length - 1, Math.floor(f * results.length))]!;
    return [
      { name: 'enqueue-to-start p50', value: q(0.5), unit: 'ms', detail: `${samples} runs, ${idleMs} ms idle before each` },
      { name: 'enqueue-to-start p99', value: q(0.99), unit: 'ms', detail: `${samples} runs, ${idleMs} ms idle before each` },
    ];
  } finally {
    await h.close();
  }
}
