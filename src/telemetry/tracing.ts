import { importOptional } from '../core/optional-package.js';
import type { StepUsage } from '../steps/step-type.js';
import type { ErrorRecord } from '../core/errors.js';
import type { AttemptOutcome } from '../store/store.js';
import type { RunTrace } from './trace-context.js';

/** What a finished attempt's span records. */
export interface AttemptEnd {
  outcome: AttemptOutcome;
  error?: ErrorRecord | undefined;
  usage?: StepUsage | undefined;
  endMs: number;
}

/** The span of one step attempt, open while the step runs. */
export interface AttemptSpan {
  /** The `traceparent` the step passes on (an `http` or `llm` request header, a `command`'s `TRACEPARENT`). */
  readonly traceparent: string;
  end(result: AttemptEnd): void;
}

/** The fields of an attempt its span names. */
export interface TracedAttempt {
  runId: string;
  pipeline: string;
  version: number;
  step: string;
  /** The step's type (`command`, `llm`...). */
  uses: string;
  attempt: number;
}

/** The run that ended, for its span. */
export interface TracedRun {
  id: string;
  pipeline: string;
  version: number;
  status: string;
  errorCode?: string | undefined;
  startMs: number;
  endMs: number;
}

/**
 * Makes the spans of runs and attempts. A trace per run: the run's span (exported when the run ends, by the
 * process that ends it) and, under it, a span per step attempt (exported by the worker that ran it). See
 * {@link RunTrace} for how every process finds the same ids.
 */
export interface RunTracer {
  startAttempt(attempt: TracedAttempt, trace: RunTrace, startMs: number): AttemptSpan;
  endRun(run: TracedRun, trace: RunTrace): void;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Whether the standard OpenTelemetry variables turn tracing on: `OTEL_TRACES_EXPORTER` set to `otlp` or
 * `console`, or (with it unset) an OTLP endpoint in `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.
 */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return false;
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
  if (exporters.length > 0) return exporters.some((e) => e === 'otlp' || e === 'console');
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim() || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim());
}

/**
 * The tracer the `OTEL_*` variables ask for, or undefined when they turn tracing off. The OpenTelemetry SDK is
 * loaded only then: a process that does not trace never imports it.
 */
export async function tracerFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<RunTracer | undefined> {
  if (!tracingEnabled(env)) return undefined;
  const { createOtelTracer } = await loadOtelSdk();
  return createOtelTracer(env);
}

/** The OpenTelemetry SDK packages tracing needs (optional peer dependencies of Sluice). */
const OTEL_SDK_PACKAGES = [
  '@opentelemetry/core',
  '@opentelemetry/resources',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/semantic-conventions',
];

/** The module that builds the tracer; a missing SDK package is `DEPENDENCY_MISSING` naming what to install. */
async function loadOtelSdk(): Promise<typeof import('./otel-tracer.js')> {
  let loaded: Promise<typeof import('./otel-tracer.js')> = import('./otel-tracer.js');
  // importOptional names one package; each SDK package is checked in turn, so the error names the one missing
  // and the install command lists them all.
  for (const name of OTEL_SDK_PACKAGES) {
    const attempt = loaded;
    loaded = importOptional(name, `tracing (OTEL_* is set; it needs ${OTEL_SDK_PACKAGES.join(', ')})`, () => attempt);
  }
  return loaded;
}
