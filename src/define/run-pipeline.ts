import { isArtifactRef, type ArtifactStore } from '../artifacts/artifact-store.js';
import { hasErrorCode, SluiceError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { RunRecord, StepRecord } from '../store/store.js';
import type { PipelineInput, PipelineOutput, TypedPipeline } from './pipeline-builder.js';

/** Options of {@link Engine.run}. */
export interface RunPipelineOptions {
  /** Aborting it cancels the run and rejects with the signal's reason. Default: none. */
  signal?: AbortSignal;
  /** Milliseconds to wait for the run; then it is cancelled and the call rejects with `RUN_TIMEOUT`. Default: none. */
  timeout?: number;
  /** Bypass the step cache. Default: false. */
  force?: boolean;
  /** Start the run once per key (24 h); the same key answers the existing run. Default: none. */
  idempotencyKey?: string;
  /** Higher runs first. Default: 0. */
  priority?: number;
}

/** How {@link Engine.run} reaches the engine: registration, runs and the store. */
type RunHost = Pick<Engine, 'registerPipeline' | 'startRun' | 'waitForRun' | 'cancel' | 'store' | 'artifacts'>;

/**
 * Registers `p` (a new version only when its definition or a step function's source changed), starts a run with
 * `input` (checked by the input schema first), waits for it and returns its output: the declared `output`, or
 * the outputs of the final steps by name, with artifact references replaced by their JSON. A failed run rejects
 * with its first failed step's code and message (`details.runId` names the run).
 */
export async function runTypedPipeline<P extends TypedPipeline<any, any, any, any, any>>(host: RunHost, p: P, input: PipelineInput<P>, options: RunPipelineOptions = {}): Promise<PipelineOutput<P>> {
  options.signal?.throwIfAborted();
  const parsed = await p.parseInput(input);
  // Children first: a parent's `pipeline` step must find its child registered.
  for (const child of p.children()) await host.registerPipeline(child);
  const stored = await host.registerPipeline(p);
  const { run } = await host.startRun(stored, {
    input: parsed,
    ...(options.force === undefined ? {} : { force: options.force }),
    ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  });
  const finished = await waitOrCancel(host, run.id, options);
  const steps = await host.store.listSteps(run.id);
  if (finished.status !== 'succeeded') throw runFailure(p.name, finished, steps);
  const outputs: Record<string, unknown> = {};
  for (const step of steps) outputs[step.name] = await resolveArtifacts(host.artifacts, step.output ?? null);
  return p.resolveOutput(outputs, parsed) as PipelineOutput<P>;
}

async function waitOrCancel(host: RunHost, runId: string, options: RunPipelineOptions): Promise<RunRecord> {
  try {
    return await host.waitForRun(runId, { ...(options.signal ? { signal: options.signal } : {}), ...(options.timeout === undefined ? {} : { timeout: options.timeout }) });
  } catch (err) {
    // The caller gave up on the run: it must not go on working unseen.
    await host.cancel(runId).catch(() => undefined);
    if (hasErrorCode(err, 'WAIT_TIMEOUT')) {
      throw new SluiceError('RUN_TIMEOUT', `run ${runId} did not finish within ${options.timeout} ms; it was cancelled`, { details: { runId } });
    }
    throw err;
  }
}

function runFailure(pipeline: string, run: RunRecord, steps: StepRecord[]): SluiceError {
  const failed = steps.filter((s) => s.status === 'failed' && s.error);
  const first = failed[0];
  if (run.status === 'waiting' || run.status === 'paused') {
    return new SluiceError('STEP_FAILED', `run ${run.id} of pipeline ${pipeline} is ${run.status}`, { details: { runId: run.id } });
  }
  const why = failed.map((s) => `step ${s.name}: ${s.error!.code}: ${s.error!.message}`).join('\n');
  const code = (first?.error?.code ?? run.error?.code ?? (run.status === 'cancelled' ? 'CANCELLED' : 'STEP_FAILED')) as SluiceError['code'];
  const message = `run ${run.id} of pipeline ${pipeline} ${run.status}${why ? `:\n${why}` : run.error ? `: ${run.error.message}` : ''}`;
  return new SluiceError(code, message, { details: { runId: run.id, status: run.status } });
}

/** Replaces JSON artifact references (large outputs the store holds by reference) with their content, at any depth. */
async function resolveArtifacts(artifacts: ArtifactStore, value: unknown, depth = 0): Promise<unknown> {
  if (isArtifactRef(value)) return value.content_type === 'application/json' ? artifacts.getJson(value) : value;
  if (depth > 64 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolveArtifacts(artifacts, v, depth + 1)));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = await resolveArtifacts(artifacts, v, depth + 1);
  return out;
}
