import type { RunEvent } from '../store/store.js';
import type { ReadPort, RunPort } from '../store/ports.js';
import { runTrace, type RunTrace } from '../telemetry/trace-context.js';
import type { AttemptSpan, RunTracer, TracedAttempt } from '../telemetry/tracing.js';

/** Runs whose trace ids are kept in memory; beyond it the map starts again (a lookup costs one indexed read). */
const TRACE_CACHE_SIZE = 10_000;

const RUN_ENDS = new Set(['run.succeeded', 'run.failed', 'run.cancelled']);

/**
 * The engine's side of tracing: finds each run's trace (its stored `traceparent`, or ids derived from the run
 * id), opens a span per attempt and exports a run's span when this process sees the run end. Errors of tracing
 * go to `onError` and never fail a step.
 */
export class RunTracing {
  private readonly traces = new Map<string, Promise<RunTrace>>();
  /** Run spans being exported, awaited by shutdown. */
  private readonly ending = new Set<Promise<void>>();

  constructor(
    private readonly tracer: Promise<RunTracer | undefined>,
    private readonly store: RunPort & Pick<ReadPort, 'runTraceparent'>,
    private readonly onError: (err: unknown) => void,
  ) {}

  private traceOf(runId: string): Promise<RunTrace> {
    let t = this.traces.get(runId);
    if (!t) {
      if (this.traces.size >= TRACE_CACHE_SIZE) this.traces.clear();
      t = this.store.runTraceparent(runId).then((tp) => runTrace(runId, tp));
      t.catch(() => this.traces.delete(runId));
      this.traces.set(runId, t);
    }
    return t;
  }

  /** Opens the span of an attempt that starts now; undefined when tracing is off or failed. */
  async startAttempt(attempt: TracedAttempt, startMs: number): Promise<AttemptSpan | undefined> {
    try {
      const tracer = await this.tracer;
      if (!tracer) return undefined;
      return tracer.startAttempt(attempt, await this.traceOf(attempt.runId), startMs);
    } catch (err) {
      this.onError(err);
      return undefined;
    }
  }

  /** Exports the span of each run these committed events ended. */
  runsEnded(events: readonly RunEvent[]): void {
    for (const e of events) {
      if (e.step !== null || !RUN_ENDS.has(e.type)) continue;
      const ending = this.endRun(e).catch(this.onError);
      this.ending.add(ending);
      void ending.finally(() => this.ending.delete(ending));
    }
  }

  private async endRun(e: RunEvent): Promise<void> {
    const tracer = await this.tracer;
    if (!tracer) return;
    const run = await this.store.getRun(e.runId);
    if (!run) return;
    const errorCode = (e.data?.['error'] as { code?: string } | undefined)?.code ?? run.error?.code;
    tracer.endRun(
      { id: run.id, pipeline: run.pipeline, version: run.version, status: run.status, errorCode, startMs: run.createdAt, endMs: run.finishedAt ?? e.at },
      await this.traceOf(run.id),
    );
    this.traces.delete(run.id);
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.ending);
    const tracer = await this.tracer.catch(() => undefined);
    await tracer?.shutdown();
  }
}
