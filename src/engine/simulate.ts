import { SluiceError, toErrorRecord, type ErrorRecord } from '../core/errors.js';
import { afterFailure, afterRewindRequest, failedForGood, startVerdict, type FailureAction } from '../core/step-policy.js';
import { evaluateCondition } from '../core/expressions.js';
import { renderStepConfig } from '../steps/render-config.js';
import { buildGraph } from '../core/graph.js';
import type { ExpressionContext, Pipeline, Step } from '../core/model.js';
import { redactDeep } from '../core/redact.js';
import { MemoryArtifactStore } from '../artifacts/memory-artifact-store.js';
import { invokeWithTimeout, OutputChecker } from './step-invocation.js';
import { StepDirective, type ArtifactAccess, type LogStream, type StepContext, type StepRegistry, type StepUsage } from '../steps/step-type.js';

/** What simulating needs: the step types and secrets of an engine; nothing of the store. */
export interface SimulateOptions {
  steps: StepRegistry;
  secrets?: Record<string, string>;
  /** Where relative paths of the definition resolve. Default: the working directory. */
  baseDir?: string;
  version?: number;
  /** Include each step's log lines. Default: false. */
  verbose?: boolean;
  now?: () => number;
  /** Where artifacts named in inputs are read from. Artifacts that steps write stay in memory. Default: none. */
  artifacts?: Pick<ArtifactAccess, 'get'>;
}

/** `pending`: the step waits on a step that waits for a human (a blocked approval or gate), as in a run. */
export type SimulatedStepStatus = 'succeeded' | 'skipped' | 'failed' | 'blocked' | 'cancelled' | 'pending' | 'waiting';

export interface SimulatedStep {
  status: SimulatedStepStatus;
  /** Tries made (retries of the step's policy, without their delays). */
  attempts: number;
  duration_ms: number;
  error: ErrorRecord | null;
  /** The resolved `with` (absent when the step did not get that far). */
  input?: unknown;
  output?: unknown;
  /** Verbose only: the step's log lines. */
  logs?: Array<{ stream: LogStream; line: string }>;
  usage?: StepUsage;
}

export interface SimulatedRun {
  input: unknown;
  status: 'succeeded' | 'failed' | 'waiting';
  /** Outputs of the steps nothing else needs. */
  output: Record<string, unknown>;
  steps: Record<string, SimulatedStep>;
  duration_ms: number;
}


/**
 * Executes a pipeline inline on each sample input, in memory: nothing is written to any store (no run, no
 * event, no cache). Semantics follow the engine: `if` skips a step, `with` templates see `input`, `steps`
 * and `run`, `disabled` steps are skipped, `on_failure: continue` passes null downstream, `fail_fast` stops
 * starting steps after a failure, retries follow the step's policy (without waiting), a gate whose rewind budget
 * is spent blocks or fails with GATE_FAILED, steps that need a blocked step stay pending while other branches
 * go on, output schemas are checked: the decisions are the step policy's (core/step-policy.ts), as in a run.
 * Steps run one at a time in topological order; the step cache is not consulted.
 */
export async function simulatePipeline(pipeline: Pipeline, inputs: unknown[], options: SimulateOptions): Promise<SimulatedRun[]> {
  const out: SimulatedRun[] = [];
  const artifacts = new MemoryArtifactStore(options.artifacts);
  for (const input of inputs) out.push(await simulateOne(pipeline, input, { ...options, memory: artifacts }));
  // Steps see the secrets; what goes back to the caller (resolved `with`, outputs, logs, errors) does not.
  return redactDeep(out, options.secrets);
}

interface RunState {
  outputs: Record<string, unknown>;
  results: Record<string, SimulatedStep>;
  failed: boolean;
  blocked: boolean;
  rewinds: Map<string, number>;
  /** Tries made of each step in this run: a step run again after a rewind goes on counting, as a run's attempts do. */
  tries: Map<string, number>;
  feedback: Map<string, unknown>;
}

type Options = SimulateOptions & { memory: ArtifactAccess };

async function simulateOne(p: Pipeline, input: unknown, options: Options): Promise<SimulatedRun> {
  const now = options.now ?? Date.now;
  const started = now();
  const { order, dependents } = buildGraph(p);
  const byName = new Map(p.steps.map((s) => [s.name, s]));
  const state: RunState = { outputs: {}, results: {}, failed: false, blocked: false, rewinds: new Map(), feedback: new Map(), tries: new Map() };
  for (let i = 0; i < order.length; i++) {
    const step = byName.get(order[i]!)!;
    // After a rewind the walk resumes at the rewound step; what the rewind did not reset keeps its result.
    if (state.results[step.name] !== undefined) continue;
    // A need that waits (for an event) holds its dependents back as a blocked one does.
    const needs = step.needs.map((n) => ({ onFailure: byName.get(n)?.onFailure ?? 'abort', status: blockedIfWaiting(state.results[n]?.status ?? 'pending') }));
    const verdict = startVerdict({ needs, failFast: p.failFast, runFailed: state.failed });
    if (verdict !== 'start') {
      state.results[step.name] = { status: verdict === 'cancel' ? 'cancelled' : 'pending', attempts: 0, duration_ms: 0, error: null };
      continue;
    }
    const result = await runStep(p, step, input, state, options);
    if (result instanceof StepDirective && result.kind === 'rewind' && result.rewind) {
      const jump = rewind(p, order, step, result, state, dependents);
      if (jump !== null) {
        i = jump - 1;
        continue;
      }
    }
  }
  const sinks = p.steps.filter((s) => (dependents.get(s.name) ?? []).length === 0).map((s) => s.name);
  const status = state.failed ? 'failed' : state.blocked ? 'waiting' : 'succeeded';
  return { input, status, output: Object.fromEntries(sinks.map((n) => [n, state.outputs[n] ?? null])), steps: state.results, duration_ms: now() - started };
}

/** Applies a gate's rewind: the index to continue from, or null when the budget is spent (the gate then blocks or fails). */
function rewind(p: Pipeline, order: string[], gate: Step, directive: StepDirective, state: RunState, dependents: Map<string, string[]>): number | null {
  const request = directive.rewind!;
  const used = state.rewinds.get(gate.name) ?? 0;
  const result = state.results[gate.name]!;
  const verdict = afterRewindRequest(gate.name, request, used);
  if (verdict.kind === 'block') {
    result.status = 'blocked';
    state.blocked = true;
    return null;
  }
  if (verdict.kind === 'fail') {
    result.status = 'failed';
    result.error = verdict.error;
    applyFailure(state, gate.name, failedForGood(gate, p.failFast));
    return null;
  }
  const index = order.indexOf(request.to);
  if (index < 0) return null;
  state.rewinds.set(gate.name, used + 1);
  state.feedback.set(request.to, request.feedback);
  // The rewound step, what follows from it, and the gate run again; nothing else does.
  const again = new Set([request.to, gate.name]);
  for (const name of order) if ([...again].some((a) => (dependents.get(a) ?? []).includes(name))) again.add(name);
  for (const name of again) {
    delete state.outputs[name];
    delete state.results[name];
  }
  return index;
}

/** A step failed for good: `continue` hands null downstream; `abort` fails the run (what is cancelled follows from it). */
function applyFailure(state: RunState, step: string, action: FailureAction): void {
  if (action.kind === 'continue') state.outputs[step] = null;
  else if (action.kind === 'abort') state.failed = true;
}

async function runStep(p: Pipeline, step: Step, input: unknown, state: RunState, options: Options): Promise<unknown> {
  const now = options.now ?? Date.now;
  const started = now();
  const record = (r: Omit<SimulatedStep, 'duration_ms'>) => (state.results[step.name] = { ...r, duration_ms: now() - started });
  if (step.disabled) {
    record({ status: 'skipped', attempts: 0, error: null });
    state.outputs[step.name] = null;
    return null;
  }
  const steps: Record<string, unknown> = {};
  for (const s of p.steps) if (s.name in state.outputs) steps[s.name] = state.outputs[s.name];
  const logs: Array<{ stream: LogStream; line: string }> = [];
  let config: unknown;
  const usage: StepUsage[] = [];
  // Each try evaluates `if` and renders `with` again, as a run's attempts do; the step policy decides what a failure
  // leads to. Failures count from this (re)start of the step; attempt numbers go on across rewinds.
  for (let failures = 0; ; ) {
    const attempts = (state.tries.get(step.name) ?? 0) + 1;
    state.tries.set(step.name, attempts);
    const ctx: ExpressionContext = { input, steps, run: { id: 'simulate', attempt: attempts, pipeline: p.name, version: options.version ?? 0 }, secrets: options.secrets ?? {} };
    try {
      if (step.if !== null && !(await evaluateCondition(step.if, ctx))) {
        record({ status: 'skipped', attempts, error: null });
        state.outputs[step.name] = null;
        return null;
      }
      config = await renderStepConfig(options.steps.get(step.uses), step.with, ctx);
      const output = await invoke(step, config as Record<string, unknown>, ctx, state.feedback.get(step.name), logs, usage, options);
      return finish(step, state, record, { attempts, output, config, logs, usage }, options.verbose === true);
    } catch (err) {
      const error = toErrorRecord(err);
      failures += 1;
      const action = afterFailure({ step, failFast: p.failFast, failures, retryable: error.retryable });
      if (action.kind === 'retry') continue;
      record({ status: 'failed', attempts, error: stripStack(error), ...verboseOf(options.verbose === true, config, undefined, logs) });
      applyFailure(state, step.name, action);
      return null;
    }
  }
}

function finish(
  step: Step,
  state: RunState,
  record: (r: Omit<SimulatedStep, 'duration_ms'>) => SimulatedStep,
  r: { attempts: number; output: unknown; config: unknown; logs: Array<{ stream: LogStream; line: string }>; usage: StepUsage[] },
  verbose: boolean,
): unknown {
  const usage = r.usage.length > 0 ? { usage: sumUsage(r.usage) } : {};
  if (r.output instanceof StepDirective && r.output.kind === 'wait') return simulatedWait(step, state, record, r, verbose);
  if (r.output instanceof StepDirective) {
    const blocked = r.output.kind === 'block';
    record({ status: blocked ? 'blocked' : 'succeeded', attempts: r.attempts, error: null, ...usage, ...verboseOf(verbose, r.config, r.output.detail, r.logs) });
    if (blocked) state.blocked = true;
    else state.outputs[step.name] = r.output.detail;
    return r.output;
  }
  record({ status: 'succeeded', attempts: r.attempts, error: null, ...usage, ...verboseOf(verbose, r.config, r.output, r.logs) });
  state.outputs[step.name] = r.output;
  return r.output;
}

function blockedIfWaiting(status: SimulatedStepStatus): Exclude<SimulatedStepStatus, 'waiting'> {
  return status === 'waiting' ? 'blocked' : status;
}

/**
 * A step that would wait: a `sleep` completes at once (its output says the time it would wake); a
 * `wait_for_event` is reported `waiting` (simulate has no events), and the steps after it stay pending.
 */
function simulatedWait(
  step: Step,
  state: RunState,
  record: (r: Omit<SimulatedStep, 'duration_ms'>) => SimulatedStep,
  r: { attempts: number; output: unknown; config: unknown; logs: Array<{ stream: LogStream; line: string }> },
  verbose: boolean,
): unknown {
  const directive = r.output as StepDirective;
  if (directive.wait?.kind === 'sleep') {
    const until = new Date(directive.wait.wakeAt ?? 0).toISOString();
    const output = { until, woke_at: until };
    record({ status: 'succeeded', attempts: r.attempts, error: null, ...verboseOf(verbose, r.config, output, r.logs) });
    state.outputs[step.name] = output;
    return output;
  }
  record({ status: 'waiting', attempts: r.attempts, error: null, ...verboseOf(verbose, r.config, directive.detail, r.logs) });
  state.blocked = true;
  return directive;
}

async function invoke(
  step: Step,
  config: Record<string, unknown>,
  ctx: ExpressionContext,
  feedback: unknown,
  logs: Array<{ stream: LogStream; line: string }>,
  usage: StepUsage[],
  options: Options,
): Promise<unknown> {
  const type = options.steps.get(step.uses);
  if (!type) throw new SluiceError('UNKNOWN_STEP_TYPE', `no step type ${step.uses} is registered`, { retryable: false });
  const output = await invokeWithTimeout(step, undefined, (signal) => {
    const stepCtx: StepContext = {
      run: ctx.run,
      step: step.name,
      input: ctx.input,
      steps: ctx.steps,
      signal,
      log: (stream, line) => logs.push({ stream, line }),
      secrets: ctx.secrets,
      baseDir: options.baseDir ?? process.cwd(),
      now: options.now ?? Date.now,
      reportUsage: (u) => usage.push(u),
      artifacts: options.memory,
      ...(feedback === undefined ? {} : { feedback }),
    };
    return type.execute(stepCtx, config);
  });
  if (!(output instanceof StepDirective)) outputs.check(step, output ?? null);
  return output === undefined ? null : output;
}

const outputs = new OutputChecker();

function verboseOf(verbose: boolean, input: unknown, output: unknown, logs: Array<{ stream: LogStream; line: string }>): Partial<SimulatedStep> {
  return { input: input ?? null, output: output ?? null, ...(verbose ? { logs } : {}) };
}

function stripStack(e: ErrorRecord): ErrorRecord {
  const { stack: _stack, ...rest } = e;
  return rest;
}

function sumUsage(reports: StepUsage[]): StepUsage {
  const sum: StepUsage = {};
  for (const r of reports) {
    if (r.model !== undefined) sum.model = r.model;
    if (r.tokensIn !== undefined) sum.tokensIn = (sum.tokensIn ?? 0) + r.tokensIn;
    if (r.tokensOut !== undefined) sum.tokensOut = (sum.tokensOut ?? 0) + r.tokensOut;
    if (r.cost !== undefined) sum.cost = (sum.cost ?? 0) + r.cost;
  }
  return sum;
}

