import type { FlowControl, FlowSpec } from './flow-control.js';

/**
 * Glossary of the Sluice model.
 *
 * - Pipeline: a named, versioned DAG of steps. Written by users as a {@link PipelineSpec} (YAML, JSON or a
 *   TypeScript object, snake_case keys as in PRODUCT.md) and normalized into a {@link Pipeline} with every
 *   default filled in. Its version increases whenever the normalized definition changes.
 * - Step: a node of the DAG. It `uses` a step type, `needs` other steps and is configured by `with`.
 * - Run: one execution of one pipeline version with one input.
 * - Attempt: one try of one step in a run. Leased by a worker, fenced by a token.
 * - Worker: claims attempts, executes them and records results.
 * - Store: where all state lives (`sqlite:PATH` or `postgres://...`).
 */

export type JsonSchema = Record<string, unknown>;

/** Retry policy of a step. Durations in milliseconds. */
export interface RetryPolicy {
  /** Total tries including the first. Default: 1 (no retry). */
  attempts: number;
  /** Default: exponential. */
  backoff: 'exponential' | 'fixed';
  /** Delay before the second try. Default: 1 s. */
  delayMs: number;
  /** Cap on any delay. Default: 60 s. */
  maxDelayMs: number;
  /** Full jitter on the computed delay. Default: true. */
  jitter: boolean;
}

export type Trigger =
  | {
      kind: 'cron';
      cron: string;
      timezone: string;
      /**
       * Slots missed while no process fired schedules: `none` skips them, `latest` fires the last one, `all`
       * fires each (at most {@link MAX_CATCHUP_SLOTS}, the latest ones). Absent means `latest`.
       */
      catchup?: CronCatchup;
    }
  | { kind: 'event'; event: string };

export type CronCatchup = 'none' | 'latest' | 'all';

/** Default catch-up of a cron trigger. */
export const DEFAULT_CATCHUP: CronCatchup = 'latest';

/** The most missed slots `catchup: all` fires at once (the latest ones). */
export const MAX_CATCHUP_SLOTS = 100;

/** A normalized step: every default filled in. */
export interface Step {
  name: string;
  uses: string;
  needs: string[];
  with: Record<string, unknown>;
  /** JSONata condition; the step is skipped when it evaluates falsy. */
  if: string | null;
  retry: RetryPolicy;
  /** Per-attempt timeout. Default: none. */
  timeoutMs: number | null;
  /** Default: abort. */
  onFailure: 'abort' | 'continue';
  /** Default: true. */
  cache: boolean;
  /**
   * What the cache key covers beyond the step's own settings, from the object form of `cache`. Absent when
   * `cache` is a boolean (absent keeps the version hash of pipelines written before it as it was).
   */
  cacheFiles?: CacheFiles;
  /** Default: false. A disabled step is skipped. */
  disabled: boolean;
  /** Higher runs first. Default: 0. */
  priority: number;
  concurrencyKey: string | null;
  concurrencyLimit: number | null;
  /** JSON Schema the output must match. */
  output: JsonSchema | null;
}

/**
 * Files and values a step's cache depends on (`cache: { inputs, outputs, key, outputs_unchanged }`). Paths and
 * globs are relative to the pipeline file's directory.
 */
export interface CacheFiles {
  /** Globs of files whose content joins the cache key. Default: []. */
  inputs: string[];
  /** Globs of files the step makes: a cached result is reused only while the files recorded with it exist. Default: []. */
  outputs: string[];
  /** A `${{ expr }}` template whose value joins the cache key. Default: null. */
  key: string | null;
  /** Reuse a cached result only while its recorded outputs hold the content they had when recorded. Default: false. */
  outputsUnchanged: boolean;
}

/** The object form of a step's `cache` as users write it. */
export interface CacheSpec {
  inputs?: string[];
  outputs?: string[];
  key?: string;
  outputs_unchanged?: boolean;
}

/** A normalized pipeline: what is hashed into a version and stored. */
export interface Pipeline {
  name: string;
  description: string;
  /** Steps of one run at once. Default: 4. */
  maxParallel: number;
  /** Default: true. */
  failFast: boolean;
  /** Whole-run timeout. Default: none. */
  timeoutMs: number | null;
  /** Default: false. */
  disabled: boolean;
  /** JSON Schema of the run input. */
  input: JsonSchema | null;
  triggers: Trigger[];
  /**
   * In the order written. An attribute pipeline has one step here, `attribute` (the internal step type that
   * selects, batches and writes records); the steps the user wrote are in `attribute.steps`.
   */
  steps: Step[];
  /** Finished runs older than this many ms are pruned; absent: the store-wide default (absent keeps the version hash of other pipelines as it was). */
  retentionMs?: number;
  /** Present only when the pipeline computes one field of every record of a dataset (absent keeps the version hash of other pipelines as it was). */
  attribute?: AttributeConfig;
  /** Flow control of run starts (rate_limit, throttle, debounce, singleton); absent when none is written. */
  flow?: FlowControl;
}

/** What makes a pipeline an attribute pipeline (PRODUCT.md "Attribute pipelines"), every default filled in. */
export interface AttributeConfig {
  dataset: string;
  /** The one field this pipeline writes. */
  target: string;
  /** The fields a record's input is made of (`$json` in a `code` step, `input` in templates). */
  fields: string[];
  /** Records per batch: one sandbox entry of a `code` step. Default: 200. */
  batchSize: number;
  /** abort: the first failed record fails the run. continue: it is counted and the run goes on. Default: abort. */
  onRecordFailure: 'abort' | 'continue';
  /** Records of a batch in flight at once through a step that is not `code` (an `llm` call, say). Default: 8. */
  concurrency: number;
  /** The steps as written, run over each batch. */
  steps: Step[];
}

/** A pipeline as users write it (YAML / JSON / TS object), keys as in PRODUCT.md. */
export interface PipelineSpec {
  name: string;
  description?: string;
  max_parallel?: number;
  fail_fast?: boolean;
  timeout?: string | number;
  disabled?: boolean;
  input?: JsonSchema;
  defaults?: { retry?: RetrySpec; timeout?: string | number };
  triggers?: Array<{ cron: string; timezone?: string; catchup?: CronCatchup } | { event: string }>;
  /** Finished runs older than this are pruned (e.g. `30d`). Default: the store-wide default, else kept. */
  retention?: string | number;
  steps: Record<string, StepSpec>;
  // Attribute pipelines: all of dataset, target and source, or none.
  dataset?: string;
  target?: string;
  source?: { fields: string[] };
  batch_size?: number;
  on_record_failure?: 'abort' | 'continue';
  concurrency?: number;
  // Flow control of run starts (see flow-control.ts).
  rate_limit?: FlowSpec['rate_limit'];
  throttle?: FlowSpec['throttle'];
  debounce?: FlowSpec['debounce'];
  singleton?: FlowSpec['singleton'];
}

export interface RetrySpec {
  attempts?: number;
  backoff?: 'exponential' | 'fixed';
  delay?: string | number;
  max_delay?: string | number;
  jitter?: boolean;
}

export interface StepSpec {
  uses: string;
  needs?: string[];
  with?: Record<string, unknown>;
  if?: string;
  retry?: RetrySpec;
  timeout?: string | number;
  on_failure?: 'abort' | 'continue';
  cache?: boolean | CacheSpec;
  disabled?: boolean;
  priority?: number;
  concurrency_key?: string;
  concurrency_limit?: number;
  output?: JsonSchema;
}

export const RUN_STATES = ['queued', 'running', 'paused', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATES)[number];

export const STEP_STATES = [
  'pending',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'cached',
  'skipped',
  'failed',
  'blocked',
  'cancelled',
  // A `sleep` or `wait_for_event` step between attempts: it holds no lease until its wake time or its event.
  'waiting',
] as const;
export type StepStatus = (typeof STEP_STATES)[number];

/** Context visible to expressions (`${{ }}`, `if`) and to steps. */
export interface ExpressionContext {
  input: unknown;
  steps: Record<string, unknown>;
  run: { id: string; attempt: number; pipeline: string; version: number };
  secrets: Record<string, string>;
  record?: unknown;
  /** What a downstream gate reported when it asked this step to run again. */
  feedback?: unknown;
  /** The event a `wait_for_event` step's `match` is evaluated against (there only). */
  event?: unknown;
}
