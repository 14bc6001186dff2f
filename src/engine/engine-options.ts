import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { StepRegistry } from '../steps/step-type.js';
import type { CodeSandboxOptions } from '../steps/code/sandbox-pool-options.js';
import type { CreatedRun, Store } from '../store/store.js';
import type { RunTracer } from '../telemetry/tracing.js';
import type { EngineExtension } from './extension.js';
import type { EngineLogger } from './engine-log.js';

/** The clock of an engine. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface EngineOptions {
  store: Store;
  steps: StepRegistry;
  /** Default: the system clock. */
  clock?: Clock;
  /** Values visible as `secrets.<NAME>`; redacted from logs. Default: none. */
  secrets?: Record<string, string>;
  /** Called with errors of background work (claims, heartbeats). Default: printed to stderr. */
  onError?: (err: unknown) => void;
  /**
   * Where artifacts live: an {@link ArtifactStore}, a folder path, `s3://bucket/prefix` (credentials, region and
   * endpoint from the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
   * `SLUICE_S3_ENDPOINT`), or `store` (the store's own tables; PostgreSQL only). Default: the store's own when it
   * has them (PostgreSQL), else `.sluice/artifacts` under the working directory.
   */
  artifacts?: ArtifactStore | string;
  /** A folder for artifacts, as `artifacts: PATH`; `artifacts` wins when both are given. */
  artifactsDir?: string;
  /** Step outputs whose JSON is larger are stored as artifacts and passed by reference. Default: 256 KiB. */
  inlineOutputLimit?: number;
  /** Run inputs whose JSON is larger are refused; pass large data as artifacts. Default: 1 MiB. */
  maxInputBytes?: number;
  /** How long record saves gather before their attribute pipelines run (read by that extension). Default: 1 s. */
  triggerDebounceMs?: number;
  /**
   * Features that plug in through the step contract (see extension.ts), e.g. `attributePipelines()`. `createEngine`
   * and the CLI add attribute pipelines; a bare `new Engine` has only what is listed here. Default: none.
   */
  extensions?: EngineExtension[];
  /**
   * Processes that run `code` step sandboxes, shared by the whole process (the last engine that sets it
   * wins). Default: env `SLUICE_CODE_WORKERS`, else min(4, cores).
   */
  codeWorkers?: number;
  /**
   * The process's pool of `code` sandboxes: `size`, `idleTimeout`, `nice` (see {@link CodeSandboxOptions}); shared by
   * the whole process (the last engine that sets it wins; its `size` over `codeWorkers`). Bad values, and bad
   * `SLUICE_CODE_*` variables, are refused when the engine is created. Default: from the environment, else defaults.
   */
  codeSandbox?: CodeSandboxOptions;
  /**
   * Log bytes kept per attempt; the rest is dropped and counted in one marker line. Default: env
   * `SLUICE_MAX_LOG_BYTES` (bytes, or a size such as `20MiB`), else 10 MiB.
   */
  maxLogBytesPerAttempt?: number;
  /**
   * Structured logs of the engine (a pino logger fits): failures, retries, lease expiries, reaps, leadership
   * changes, dead letters, shutdown; errors of background work too, when no `onError` is given. Default: none.
   */
  logger?: EngineLogger;
  /**
   * OpenTelemetry tracing: a trace per run, a span per step attempt. Default: on when the standard `OTEL_*`
   * variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_EXPORTER`), else off and the SDK not loaded.
   */
  tracer?: RunTracer | false;
  /**
   * Store-wide retention: finished runs of pipelines without their own `retention` are pruned once older than
   * this (a duration such as `30d`, or ms). Default: env `SLUICE_RETENTION`, else kept.
   */
  retention?: string | number;
}

/** Options of {@link Engine.emit}. */
export interface EmitOptions {
  /** Makes emitting idempotent per pipeline: a second emit with this key returns the runs the first started. */
  idempotencyKey?: string;
  /** A W3C trace context the started runs join (the caller's span becomes their parent). */
  traceparent?: string;
}

/** What {@link Engine.emit} started: one entry per pipeline whose trigger names the event. */
export interface EmittedEvent {
  event: string;
  runs: CreatedRun[];
}
