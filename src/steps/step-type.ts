import type { JsonSchema } from '../core/model.js';

export type LogStream = 'stdout' | 'stderr' | 'info' | 'warn' | 'error';

/** What a step gets while it executes. A step never touches the store. */
export interface StepContext {
  run: { id: string; attempt: number; pipeline: string; version: number };
  /** Name of the step being executed. */
  step: string;
  /** The run input. */
  input: unknown;
  /** Outputs of upstream steps by name (null for a failed `on_failure: continue` step). */
  steps: Record<string, unknown>;
  /** Aborted on timeout, cancel, or lease loss; the step must stop promptly. */
  signal: AbortSignal;
  /** Appends a line to the step's log. */
  log(stream: LogStream, line: string): void;
  secrets: Record<string, string>;
  /** Directory that relative paths in the definition resolve against (the pipeline file's folder). */
  baseDir: string;
  /** Injected clock, epoch milliseconds. */
  now(): number;
  /** Records model usage (tokens, cost) of this attempt; calls add up. */
  reportUsage(usage: StepUsage): void;
}

/** Model usage a step reports: recorded on the attempt and summed on the run. */
export interface StepUsage {
  model?: string;
  tokensIn?: number;
  tokensOut?: number;
  /** In the currency of the user's price table. */
  cost?: number;
}

/**
 * The plugin contract of a step type: a name, a JSON Schema for its resolved `with`, and `execute`.
 * `execute` returns the step's output (any JSON value) or throws; a thrown `SluiceError` keeps its code.
 */
export interface StepType<Config = Record<string, unknown>> {
  type: string;
  /** JSON Schema of `with`. String values may be `${{ }}` templates, so keep it lenient on types. */
  configSchema: JsonSchema;
  execute(ctx: StepContext, config: Config): Promise<unknown>;
}

/** Registry of step types by name. */
export type StepRegistry = ReadonlyMap<string, StepType<any>>;
