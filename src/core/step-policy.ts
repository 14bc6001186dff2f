import type { ErrorRecord } from './errors.js';
import { renderTemplate, type TemplateEncoder } from './expressions.js';
import type { ExpressionContext, RetryPolicy, Step } from './model.js';
import { retryDelay } from './retry.js';

/**
 * The one step policy: what happens after a step fails, what a gate whose rewind budget is spent does, and how
 * a step's `with` is rendered. Pure functions with no I/O, called by every place that runs steps (the engine's
 * executor and run store, `simulate`, attribute batches) so they cannot disagree.
 */

/** What follows a failed try of a step. */
export type FailureAction =
  /** Try again after `delayMs`. */
  | { kind: 'retry'; delayMs: number }
  /** The step failed for good; dependents go on and see its output as null (`on_failure: continue`). */
  | { kind: 'continue' }
  /**
   * The step failed for good and fails the run (`on_failure: abort`). `cancel` says which steps that have not
   * started are cancelled: `all` under `fail_fast`, else only the step's `downstream` (other branches go on).
   */
  | { kind: 'abort'; cancel: 'all' | 'downstream' };

/** What {@link afterFailure} weighs. */
export interface FailureFacts {
  /** The step as defined. */
  step: Pick<Step, 'retry' | 'onFailure'>;
  /** The pipeline's `fail_fast`. */
  failFast: boolean;
  /** Failed tries of the step so far, this one included (1 after the first failure). */
  failures: number;
  /** The error's `retryable`; undefined counts as retryable. */
  retryable: boolean | undefined;
  /** Whether the run may still start tries (not cancelled, not ended). Default: true. */
  live?: boolean;
  /** A delay the failure asked for (a Retry-After): the retry waits at least this long. Default: 0. */
  retryAfterMs?: number;
  /** Jitter source of the retry delay. Default: Math.random. */
  random?: () => number;
  /**
   * The retry delay already drawn for this failure (the executor draws it when the try fails, with its own
   * jitter source): used as is, so the run store keeps the delay the executor reported. Default: drawn here.
   */
  delayMs?: number;
}

/**
 * After a failed try: retry while the step's policy allows (the error is retryable, fewer than
 * `retry.attempts` tries failed, the run is live); else `continue` or `abort` per `on_failure`.
 */
export function afterFailure(facts: FailureFacts): FailureAction {
  if (mayRetry(facts.step.retry, facts.failures, facts.retryable, facts.live ?? true)) {
    return { kind: 'retry', delayMs: facts.delayMs ?? retryDelayAfter(facts.step.retry, facts.failures, facts.retryAfterMs ?? 0, facts.random) };
  }
  return failedForGood(facts.step, facts.failFast);
}

/** What a failure that is not retried leads to: `continue` or `abort` per the step's `on_failure`. */
export function failedForGood(step: Pick<Step, 'onFailure'>, failFast: boolean): Exclude<FailureAction, { kind: 'retry' }> {
  if (step.onFailure === 'continue') return { kind: 'continue' };
  return { kind: 'abort', cancel: abortScope(failFast) };
}

/** Which steps that have not started a step failing the run cancels: all under `fail_fast`, else its downstream. */
export function abortScope(failFast: boolean): 'all' | 'downstream' {
  return failFast ? 'all' : 'downstream';
}

/** Whether another try is allowed after `failures` failed tries. */
export function mayRetry(policy: RetryPolicy, failures: number, retryable: boolean | undefined, live = true): boolean {
  return live && retryable !== false && failures < policy.attempts;
}

/** The wait before the next try: the policy's backoff, and never less than what the failure asked for. */
export function retryDelayAfter(policy: RetryPolicy, failures: number, retryAfterMs = 0, random: () => number = Math.random): number {
  return Math.max(retryDelay(policy, failures, random), retryAfterMs > 0 ? retryAfterMs : 0);
}

/** A gate's request to run an upstream step again. */
export interface RewindBudget {
  /** Rewinds allowed to this gate in one run. */
  budget: number;
  /** What happens once they are spent. */
  then: 'block' | 'fail';
}

/** What a gate's rewind request comes to. */
export type RewindVerdict =
  /** Rewind; `budgetLeft` rewinds remain after this one. */
  | { kind: 'rewind'; budgetLeft: number }
  /** The budget is spent: the run waits for a human on the gate. */
  | { kind: 'block'; reason: string }
  /** The budget is spent: the gate fails with `error` (code GATE_FAILED, not retryable); its `on_failure` applies. */
  | { kind: 'fail'; reason: string; error: ErrorRecord };

/** A gate that asked for a rewind after `used` rewinds in this run. */
export function afterRewindRequest(gate: string, request: RewindBudget, used: number): RewindVerdict {
  if (used < request.budget) return { kind: 'rewind', budgetLeft: request.budget - used - 1 };
  const reason = `retry budget of ${request.budget} spent`;
  if (request.then === 'block') return { kind: 'block', reason };
  return { kind: 'fail', reason, error: gateFailedError(gate, reason) };
}

/** The error of a gate that failed because its rewind budget is spent. */
export function gateFailedError(gate: string, reason: string): ErrorRecord {
  return { code: 'GATE_FAILED', message: `gate ${gate}: ${reason}`, retryable: false };
}

/** How a step type wants its `with` rendered. */
export interface RenderRules {
  /** Keys left as written: the step renders them itself (e.g. a `map` step's per-item `step`). Default: none. */
  rawKeys?: readonly string[];
  /** How values are written into strings (shell-quoted, percent-encoded). Default: plain text. */
  encode?: TemplateEncoder;
}

/** A step's `with` with its `${{ }}` templates resolved, except the raw keys; keys rendering to undefined are left out. */
export async function renderWith(written: Record<string, unknown>, ctx: ExpressionContext, rules: RenderRules = {}): Promise<Record<string, unknown>> {
  const raw = rules.rawKeys ?? [];
  const rendered: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(written)) {
    if (raw.includes(key)) rendered[key] = value;
    else {
      const out = await renderTemplate(value, ctx, rules.encode, [key]);
      if (out !== undefined) rendered[key] = out;
    }
  }
  return rendered;
}

/** Whether a step may start, given its needs' states. */
export type StartVerdict = 'start' | 'cancel' | 'wait';

/** What {@link startVerdict} weighs: the step's needs, as defined and as they ended. */
export interface StartFacts {
  needs: Array<{ onFailure: Step['onFailure']; status: 'succeeded' | 'skipped' | 'failed' | 'blocked' | 'cancelled' | 'pending' }>;
  /** The pipeline's `fail_fast`. */
  failFast: boolean;
  /** Whether some step already failed the run (`on_failure: abort`). */
  runFailed: boolean;
}

/**
 * Whether a step whose needs have ended may start: it is cancelled under `fail_fast` once the run failed, or
 * when a need was cancelled or failed with `on_failure: abort`; it waits while a need waits for a human (or
 * still waits itself); else it starts.
 */
export function startVerdict(facts: StartFacts): StartVerdict {
  if (facts.runFailed && facts.failFast) return 'cancel';
  if (facts.needs.some((n) => n.status === 'cancelled' || (n.status === 'failed' && n.onFailure === 'abort'))) return 'cancel';
  if (facts.needs.some((n) => n.status === 'blocked' || n.status === 'pending')) return 'wait';
  return 'start';
}
