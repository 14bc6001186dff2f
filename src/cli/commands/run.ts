import { SluiceError, errorMessage } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { RunEvent, RunRecord } from '../../store/store.js';
import { resolve } from 'node:path';
import { loadPipelineFile, type LoadedPipeline } from '../../core/load-pipeline.js';
import { builtinStepTypes } from '../../steps/builtin.js';
import { looksLikeFile, openEngine, parseInput, printJson, resolvePipeline, type GlobalOptions } from '../context.js';
import { explainRun, formatExplanations } from '../explain.js';
import { attributeRunStats, runJson } from '../json-views.js';
import { formatEventLine, LiveProgress } from '../progress.js';
import { isRichTerminal } from '../terminal.js';
import { formatEvalSummary } from '../../evals/eval-views.js';
import { loadTypedTarget, normalizeLoaded, parseLoadedInput } from '../../define/load-pipelines.js';
import type { TypedPipeline } from '../../define/pipeline-builder.js';
import { evalsAfterRun } from '../../evals/evals-after-run.js';
import { flowNote } from '../flow-note.js';

export interface RunOptions extends GlobalOptions {
  input?: string;
  steps?: string;
  force?: boolean;
  resume?: string;
  maxParallel?: string;
  detach?: boolean;
  concurrency?: string;
  /** Say per step why it ran or was cached. */
  explain?: boolean;
}

/** `sluice run FILE|NAME`: starts (or resumes) a run and works it in this process until it ends. */
export async function runCommand(target: string | undefined, opts: RunOptions): Promise<number> {
  // A pipeline defined in code (`FILE.ts#NAME`) is normalized before the store is opened, as a file is validated.
  const typed = !opts.resume && target ? await loadTypedTarget(target) : undefined;
  if (typed) normalizeLoaded(typed, builtinStepTypes());
  // A pipeline file is validated before the store is opened: a bad file touches nothing.
  const loaded = !typed && !opts.resume && target && looksLikeFile(target) ? await loadPipelineFile(resolve(target), builtinStepTypes()) : undefined;
  const engine = await openEngine(opts);
  try {
    const since = opts.resume ? await lastEventId(engine, opts.resume) : 0;
    const run = opts.resume ? await resumeRun(engine, opts.resume) : await startRun(engine, target, loaded, opts, typed);
    if (opts.detach) {
      if (opts.json) printJson(await runJson(engine, run));
      else process.stdout.write(`${run.id}\n`);
      return 0;
    }
    const final = await follow(engine, run, since, opts);
    if ('interrupted' in final) return INTERRUPTED_EXIT_CODES[final.interrupted];
    if (final.status === 'succeeded') await runEvalsAfter(final.pipeline, engine, opts);
    return final.status === 'succeeded' ? 0 : 1;
  } finally {
    await engine.close();
  }
}

async function lastEventId(engine: Engine, runId: string): Promise<number> {
  await engine.requireRun(runId);
  let last = 0;
  for (;;) {
    const page = await engine.store.listEvents({ runId, afterId: last, limit: 1000 });
    if (page.length === 0) return last;
    last = page[page.length - 1]!.id;
  }
}

async function startRun(engine: Engine, target: string | undefined, loaded: LoadedPipeline | undefined, opts: RunOptions, typed?: TypedPipeline<any, any, any, any, any>): Promise<RunRecord> {
  if (!target) throw new SluiceError('VALIDATION_FAILED', 'sluice run needs a pipeline FILE or NAME (or --resume RUN)');
  const pipeline = typed
    ? await engine.registerPipeline(typed)
    : loaded
    ? await engine.registerPipeline(loaded.pipeline, { text: loaded.source, file: loaded.file })
    : await resolvePipeline(engine, target);
  const steps = opts.steps ? opts.steps.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  const maxParallel = opts.maxParallel === undefined ? undefined : positiveInt(opts.maxParallel, '--max-parallel');
  const created = await engine.startRun(pipeline, {
    // A Standard Schema of a code pipeline checks (and completes, with its defaults) the input here.
    input: typed ? await parseLoadedInput(typed, parseInput(opts.input)) : parseInput(opts.input),
    ...(steps ? { steps } : {}),
    ...(opts.force ? { force: true } : {}),
    ...(maxParallel === undefined ? {} : { maxParallel }),
  });
  const note = opts.json ? null : flowNote(created);
  if (note) process.stderr.write(`${note}\n`);
  return created.run;
}

/** Resume: a failed or cancelled run is retried, a paused one resumed, a crashed one taken over. */
async function resumeRun(engine: Engine, runId: string): Promise<RunRecord> {
  const run = await engine.requireRun(runId);
  if (run.status === 'failed' || run.status === 'cancelled') return (await engine.retry(runId)).run;
  if (run.status === 'paused') return (await engine.resume(runId)).run;
  if (run.status === 'succeeded') throw new SluiceError('ILLEGAL_TRANSITION', `run ${runId} already succeeded; use rollback to run steps again`);
  await engine.reapNow();
  return run;
}

async function follow(engine: Engine, run: RunRecord, since: number, opts: RunOptions): Promise<RunRecord | { interrupted: InterruptSignal }> {
  const live = !opts.json && isRichTerminal(process.stdout);
  const progress = live ? new LiveProgress(process.stdout, `${run.pipeline} v${run.version}  run ${run.id}`, await engine.store.listSteps(run.id)) : null;
  const onEvent = (e: RunEvent) => {
    if (e.runId !== run.id) return;
    if (progress) progress.onEvent(e);
    else if (!opts.json) process.stdout.write(`${formatEventLine(e)}\n`);
  };
  if (!live && !opts.json) process.stdout.write(`run ${run.id}  ${run.pipeline} v${run.version}\n`);
  // Replay what this command recorded before following (run.queued, the first step.queued, a resume), then follow live.
  for (const e of await engine.store.listEvents({ runId: run.id, afterId: since })) onEvent(e);
  const unsubscribe = engine.subscribe(onEvent);
  progress?.start();
  const concurrency = opts.concurrency === undefined ? undefined : positiveInt(opts.concurrency, '--concurrency');
  const interrupts = catchInterrupts();
  engine.startWorker({ runId: run.id, ...(concurrency === undefined ? {} : { concurrency }) });
  try {
    const final = await engine.waitForRun(run.id, { untilSettled: true, signal: interrupts.signal }).catch((err: unknown) => {
      if (interrupts.received() === undefined) throw err;
      return undefined;
    });
    if (final === undefined) return await handBack(engine, run, interrupts.received()!, progress);
    // A finished run has nothing left worth waiting for (a late result would be rejected); a paused one
    // lets its running steps finish and record their results.
    await engine.stopWorker(final.status === 'paused' || final.status === 'waiting' ? Number.POSITIVE_INFINITY : 0);
    progress?.stop();
    if (opts.explain) await reportExplained(engine, final, opts);
    else await report(engine, final, opts);
    if (!opts.json) await reportAttributeRun(engine, final);
    return final;
  } finally {
    unsubscribe();
    interrupts.dispose();
  }
}

type InterruptSignal = 'SIGINT' | 'SIGTERM';

/** 128 + the signal's number, as a shell reports a process ended by it. */
const INTERRUPTED_EXIT_CODES: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Catches SIGINT (Ctrl-C) and SIGTERM while this process works the run: the first aborts `signal`; a second one
 * exits at once, leaving what was not handed back yet to the next `--resume` (or to lease expiry elsewhere).
 */
function catchInterrupts(): { signal: AbortSignal; received(): InterruptSignal | undefined; dispose(): void } {
  const controller = new AbortController();
  let received: InterruptSignal | undefined;
  const onSignal = (signal: InterruptSignal) => {
    if (received !== undefined) {
      process.stderr.write(`sluice: ${signal} again: exiting now\n`);
      process.exit(INTERRUPTED_EXIT_CODES[signal]);
    }
    received = signal;
    controller.abort(new SluiceError('CANCELLED', `interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    received: () => received,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Stops working the run here: no more claims, the steps' processes ended, and their attempts handed back at once
 * (the run stays `running`, ready for `--resume` or any worker).
 */
async function handBack(engine: Engine, run: RunRecord, signal: InterruptSignal, progress: LiveProgress | null): Promise<{ interrupted: InterruptSignal }> {
  progress?.stop();
  process.stderr.write(`sluice: ${signal}: stopping run ${run.id} (its steps are ended and handed back; ${signal} again exits at once)\n`);
  await engine.interruptWorker();
  process.stderr.write(`interrupted: run ${run.id} stopped; continue it with sluice run --resume ${run.id}\n`);
  return { interrupted: signal };
}

async function report(engine: Engine, run: RunRecord, opts: RunOptions): Promise<void> {
  if (opts.json) {
    printJson(await runJson(engine, run));
    return;
  }
  const took = run.finishedAt !== null && run.startedAt !== null ? ` in ${run.finishedAt - run.startedAt} ms` : '';
  const why = run.error ? `: ${run.error.message}` : '';
  process.stdout.write(`run ${run.id} ${run.status}${took}${why}\n`);
  if (run.status === 'waiting') {
    process.stdout.write(`a step waits for a human: sluice approve|reject ${run.id} STEP, then sluice run --resume ${run.id}\n`);
  } else if (run.status === 'paused') {
    process.stdout.write(`go on with: sluice run --resume ${run.id}\n`);
  }
}

/** `--explain`: the run's outcome, then per step why it ran or was cached (in the JSON as `explain`). */
async function reportExplained(engine: Engine, run: RunRecord, opts: RunOptions): Promise<void> {
  const rows = await explainRun(engine, run);
  if (opts.json) return printJson({ ...(await runJson(engine, run)), explain: rows });
  await report(engine, run, opts);
  process.stdout.write(formatExplanations(rows));
}

/** An attribute pipeline's run: what it computed, skipped and failed (its step's output, or its error's). */
async function reportAttributeRun(engine: Engine, run: RunRecord): Promise<void> {
  const stats = await attributeRunStats(engine, run);
  if (!stats) return;
  const tokens = stats.tokens_in + stats.tokens_out > 0 ? `, tokens ${stats.tokens_in} in / ${stats.tokens_out} out` : '';
  process.stdout.write(`${stats.processed} processed, ${stats.failed} failed, ${stats.skipped} skipped${tokens}\n`);
  for (const f of stats.failures.slice(0, 5)) process.stdout.write(`  record ${f.record} failed in step ${f.step}: ${f.error.message}\n`);
}

/**
 * After a run succeeded: runs the pipeline's evals when it has any and prints a one-line summary (stderr with
 * --json). Eval failures do not change the exit code of the run.
 */
async function runEvalsAfter(pipeline: string, engine: Engine, opts: RunOptions): Promise<void> {
  try {
    const report = await evalsAfterRun(engine, pipeline);
    if (report === null) return;
    (opts.json ? process.stderr : process.stdout).write(`${formatEvalSummary(pipeline, report.summary)}\n`);
  } catch (err) {
    process.stderr.write(`sluice: evals of ${pipeline} failed: ${errorMessage(err)}\n`);
  }
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new SluiceError('VALIDATION_FAILED', `${flag} must be a positive integer, got ${value}`);
  return n;
}
