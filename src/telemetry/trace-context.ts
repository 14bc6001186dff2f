import { createHash } from 'node:crypto';

/**
 * W3C Trace Context (`traceparent`: `00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>`) and the ids
 * a run's trace is made of. No OpenTelemetry import: the engine and the steps use this whether tracing is on or
 * not, and it costs a string check.
 */
export interface TraceParent {
  traceId: string;
  spanId: string;
  /** Whether the caller records this trace (flag 01). */
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Parses a `traceparent` header value; undefined when it is absent or malformed (all-zero ids, version ff, bad
 * length), as the W3C spec says: a broken header starts a new trace rather than failing the request.
 */
export function parseTraceParent(value: string | undefined | null): TraceParent | undefined {
  const m = TRACEPARENT.exec((value ?? '').trim().toLowerCase());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceParent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.spanId}-${tp.sampled ? '01' : '00'}`;
}

function hexOf(text: string, hexChars: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexChars);
}

/**
 * The trace and span of a run, the same in every process that works on it (a run resumed on another worker joins
 * its trace): the trace id is the one of the `traceparent` the run was started with, else derived from the run
 * id; the run span's id is always derived from the run id. `parent` is the caller's span, when there was one.
 */
export interface RunTrace {
  traceId: string;
  runSpanId: string;
  sampled: boolean;
  parent?: TraceParent;
}

export function runTrace(runId: string, started: string | null | undefined): RunTrace {
  const parent = parseTraceParent(started);
  const runSpanId = hexOf(`sluice run span ${runId}`, 16);
  if (parent) return { traceId: parent.traceId, runSpanId, sampled: parent.sampled, parent };
  return { traceId: hexOf(`sluice run trace ${runId}`, 32), runSpanId, sampled: true };
}
