import { SluiceError } from '../../core/errors.js';
import { userInfo } from 'node:os';
import { openEngine, printJson, resolvePipeline, type GlobalOptions } from '../context.js';
import { runView } from '../../server/views.js';
import type { TransitionResult } from '../../store/store.js';
import type { Engine } from '../../engine/engine.js';

type Action = 'pause' | 'resume' | 'cancel' | 'retry';

/** `sluice pause|resume|cancel|retry RUN`. Resume and retry only queue the work; a worker or `run --resume` does it. */
export async function controlCommand(action: Action, runId: string, opts: GlobalOptions): Promise<number> {
  const engine = await openEngine(opts);
  try {
    const result = await perform(engine, action, runId);
    print(result, opts);
    return 0;
  } finally {
    await engine.close();
  }
}

function perform(engine: Engine, action: Action, runId: string): Promise<TransitionResult> {
  const table: Record<Action, (e: Engine, id: string) => Promise<TransitionResult>> = {
    pause: (e, id) => e.pause(id),
    resume: (e, id) => e.resume(id),
    cancel: (e, id) => e.cancel(id),
    retry: (e, id) => e.retry(id),
  };
  return table[action](engine, runId);
}

/** `sluice rollback RUN --to STEP`. */
export async function rollbackCommand(runId: string, opts: GlobalOptions & { to: string }): Promise<number> {
  const engine = await openEngine(opts);
  try {
    print(await engine.rollback(runId, opts.to), opts);
    return 0;
  } finally {
    await engine.close();
  }
}

/** `sluice reset FILE|NAME`: forget the cached step outputs, so the next run executes every step. */
export async function resetCommand(target: string, opts: GlobalOptions): Promise<number> {
  const engine = await openEngine(opts);
  try {
    const p = await resolvePipeline(engine, target);
    const dropped = await engine.store.resetPipelineCache(p.name);
    if (opts.json) printJson({ pipeline: p.name, dropped });
    else process.stdout.write(`pipeline ${p.name}: ${dropped} cached step result(s) dropped\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

function print(result: TransitionResult, opts: GlobalOptions): void {
  if (opts.json) printJson(runView(result.run));
  else process.stdout.write(`run ${result.run.id} is ${result.run.status}\n`);
}

/** `sluice approve|reject RUN STEP [--comment TEXT]`: a human's decision on a blocked step. */
export async function decideCommand(decision: 'approve' | 'reject', runId: string, step: string, opts: GlobalOptions & { comment?: string; by?: string; response?: string }): Promise<number> {
  const response = opts.response === undefined ? undefined : parseResponse(opts.response);
  const engine = await openEngine(opts);
  try {
    const result = await engine.decide(runId, step, { decision, ...(opts.comment ? { comment: opts.comment } : {}), ...(response === undefined ? {} : { response }), by: opts.by ?? osUser() });
    print(result, opts);
    return 0;
  } finally {
    await engine.close();
  }
}

/** `--response` as JSON; a clear error names the option otherwise. */
function parseResponse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `--response is not JSON: ${(err as Error).message}`);
  }
}

/** Who decides from the CLI when `--by` is not given: the OS user, else `cli`. */
function osUser(): string {
  try {
    return process.env['USER'] || userInfo().username || 'cli';
  } catch {
    // userInfo throws for a uid without a passwd entry (some containers).
    return 'cli';
  }
}
