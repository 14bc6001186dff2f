import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type SpanContext, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, RandomIdGenerator, type IdGenerator, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { formatTraceParent, type RunTrace } from './trace-context.js';
import type { AttemptEnd, AttemptSpan, RunTracer, TracedAttempt, TracedRun } from './tracing.js';

/**
 * Random ids, except for the one span whose id is set just before it starts: a run's span, whose id every
 * process derives from the run id (see runTrace). Spans start synchronously, so the forced id cannot leak.
 */
class RunIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  forcedTraceId: string | undefined;
  forcedSpanId: string | undefined;

  generateTraceId(): string {
    return this.forcedTraceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.forcedSpanId ?? this.random.generateSpanId();
  }
}

/** The exporters `OTEL_TRACES_EXPORTER` names (default: otlp, which reads `OTEL_EXPORTER_OTLP_*` itself). */
function processors(env: NodeJS.ProcessEnv): SpanProcessor[] {
  const names = (env['OTEL_TRACES_EXPORTER'] ?? 'otlp').split(',').map((e) => e.trim().toLowerCase());
  const out: SpanProcessor[] = [];
  if (names.includes('otlp')) out.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  if (names.includes('console')) out.push(new BatchSpanProcessor(new ConsoleSpanExporter()));
  return out;
}

/** The span context of a run's own span: the parent of its attempts' spans, in any process. */
function runSpanContext(t: RunTrace): SpanContext {
  return { traceId: t.traceId, spanId: t.runSpanId, traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true };
}

function attemptAttributes(a: TracedAttempt): Attributes {
  return { 'sluice.pipeline': a.pipeline, 'sluice.pipeline.version': a.version, 'sluice.run.id': a.runId, 'sluice.step': a.step, 'sluice.step.type': a.uses, 'sluice.attempt': a.attempt };
}

/** The GenAI semantic conventions of an `llm` step's usage. */
function genAiAttributes(uses: string, result: AttemptEnd): Attributes {
  const usage = result.usage;
  if (uses !== 'llm' && usage?.model === undefined) return {};
  const out: Attributes = { 'gen_ai.operation.name': 'chat' };
  if (usage?.model !== undefined) out['gen_ai.request.model'] = usage.model;
  if (usage?.tokensIn !== undefined) out['gen_ai.usage.input_tokens'] = usage.tokensIn;
  if (usage?.tokensOut !== undefined) out['gen_ai.usage.output_tokens'] = usage.tokensOut;
  return out;
}

/** A {@link RunTracer} over the OpenTelemetry SDK, exporting as the `OTEL_*` variables say. */
export function createOtelTracer(env: NodeJS.ProcessEnv): RunTracer {
  const ids = new RunIdGenerator();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env['OTEL_SERVICE_NAME']?.trim() || 'sluice' }),
    idGenerator: ids,
    spanProcessors: processors(env),
  });
  const tracer: Tracer = provider.getTracer('sluice');
  return {
    startAttempt(attempt, t, startMs): AttemptSpan {
      const parent = trace.setSpanContext(ROOT_CONTEXT, runSpanContext(t));
      const span = tracer.startSpan(`step ${attempt.step}`, { kind: attempt.uses === 'llm' ? SpanKind.CLIENT : SpanKind.INTERNAL, startTime: startMs, attributes: attemptAttributes(attempt) }, parent);
      const own = span.spanContext();
      return {
        traceparent: formatTraceParent({ traceId: own.traceId, spanId: own.spanId, sampled: (own.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED }),
        end(result) {
          span.setAttributes({ 'sluice.step.status': result.outcome, ...genAiAttributes(attempt.uses, result) });
          if (result.error) {
            span.setAttribute('sluice.error.code', result.error.code);
            span.setAttribute('error.type', result.error.code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.message });
          }
          span.end(result.endMs);
        },
      };
    },
    endRun(run: TracedRun, t: RunTrace): void {
      const parent = t.parent ? trace.setSpanContext(ROOT_CONTEXT, { traceId: t.parent.traceId, spanId: t.parent.spanId, traceFlags: t.sampled ? 1 : 0, isRemote: true }) : ROOT_CONTEXT;
      const attributes: Attributes = { 'sluice.pipeline': run.pipeline, 'sluice.pipeline.version': run.version, 'sluice.run.id': run.id, 'sluice.run.status': run.status };
      if (run.errorCode !== undefined) attributes['sluice.error.code'] = run.errorCode;
      ids.forcedTraceId = t.traceId;
      ids.forcedSpanId = t.runSpanId;
      let span;
      try {
        // A root span takes its trace id from the generator; a run started with a traceparent inherits it.
        span = tracer.startSpan(`run ${run.pipeline}`, { kind: SpanKind.INTERNAL, startTime: run.startMs, attributes, root: !t.parent }, parent);
      } finally {
        ids.forcedTraceId = undefined;
        ids.forcedSpanId = undefined;
      }
      if (run.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: run.errorCode ?? 'failed' });
      span.end(run.endMs);
    },
    shutdown: () => provider.shutdown(),
  };
}
