/**
 * What a step's attempt hands the store besides its output: per-item results, model usage, and requests to start a
 * child run or to rewind the run. Core types, so that the store needs nothing from the steps layer.
 */

/** The recorded result of one item of a fan-out step. */
export interface StepItem {
  index: number;
  status: 'succeeded' | 'failed';
  output?: unknown;
  error?: { code: string; message: string };
}

/** Model usage a step reports: recorded on the attempt and summed on the run. */
export interface StepUsage {
  model?: string;
  tokensIn?: number;
  tokensOut?: number;
  /** In the currency of the user's price table. */
  cost?: number;
}

export interface SpawnRequest {
  /** Name of the pipeline to run (its latest version). */
  pipeline: string;
  input: unknown;
  /** The spawning attempt's span: the child run joins the parent's trace under it. Default: none. */
  traceparent?: string;
}

export interface RewindRequest {
  /** The upstream step to run again. */
  to: string;
  /** Visible to that step as `feedback` in expressions and `ctx.feedback`. */
  feedback: unknown;
  /** How many rewinds this step may ask for in one run. */
  budget: number;
  /** What happens when the budget is spent. */
  then: 'block' | 'fail';
}
