import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunEvent, Store, StoredPipeline } from '../store/store.js';
import { LabelCap, OTHER } from './label-cap.js';

/** Upper bounds (seconds) of the step and HTTP duration histograms. */
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Upper bounds (seconds) of the run duration histogram: runs last from milliseconds to hours. */
const RUN_BUCKETS = [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10800, 43200, 86400];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const RUN_ENDS = ['succeeded', 'failed', 'cancelled'];
const STEP_ENDS = ['succeeded', 'failed', 'retrying', 'cached', 'skipped'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Runs whose creation time is remembered for their duration; beyond it the map starts again. */
const CREATED_CACHE_SIZE = 50_000;

export interface MetricsOptions {
  /** Distinct `pipeline` label values; more are counted as `other`. Default: 200. */
  maxPipelines?: number;
  /** Distinct `step` label values per pipeline; more are counted as `other`. Default: 100. */
  maxStepsPerPipeline?: number;
}

/** The process and event-loop metrics (`process_*`, `nodejs_*`): one set per process, shared by its servers. */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Prometheus metrics of a server, counted from the run events it sees (its own and, through polling, those of
 * other processes), plus gauges read from the store at scrape time and the process's own metrics. Counters start
 * at zero with the process; every series of a registered pipeline is there from the first scrape.
 */
export class Metrics {
  private readonly registry = new Registry();
  private readonly pipelines: LabelCap;
  private readonly steps = new Map<string, LabelCap>();
  private readonly maxSteps: number;
  private readonly createdAt = new Map<string, number>();
  /** Pipelines and (pipeline, step) pairs whose series exist. */
  private readonly initialized = new Set<string>();
  private readonly runs = new Counter({ name: 'sluice_runs_total', help: 'Run transitions seen, by pipeline and new status.', labelNames: ['pipeline', 'status'], registers: [this.registry] });
  private readonly stepsTotal = new Counter({ name: 'sluice_steps_total', help: 'Step transitions seen, by pipeline, step and new status.', labelNames: ['pipeline', 'step', 'status'], registers: [this.registry] });
  private readonly runDuration = new Histogram({ name: 'sluice_run_duration_seconds', help: 'Time from a run being queued to its end, by pipeline and final status.', labelNames: ['pipeline', 'status'], buckets: RUN_BUCKETS, registers: [this.registry] });
  private readonly stepDuration = new Histogram({ name: 'sluice_step_duration_seconds', help: 'Processing time of finished attempts, by pipeline, step and outcome.', labelNames: ['pipeline', 'step', 'status'], buckets: STEP_BUCKETS, registers: [this.registry] });
  private readonly leaseExpiries = new Counter({ name: 'sluice_lease_expiries_total', help: 'Attempts queued again because their lease expired (or their worker handed them back), by pipeline.', labelNames: ['pipeline'], registers: [this.registry] });
  private readonly queueDepth = new Gauge({ name: 'sluice_queue_depth', help: 'Attempts queued in the store (ready or delayed), by pipeline.', labelNames: ['pipeline'], registers: [this.registry] });
  private readonly queueAge = new Gauge({ name: 'sluice_queue_oldest_age_seconds', help: 'How long the oldest ready queued attempt has waited to be claimed, by pipeline (0: none waits).', labelNames: ['pipeline'], registers: [this.registry] });
  private readonly http = new Histogram({ name: 'sluice_http_request_duration_seconds', help: 'HTTP requests answered, by method, route pattern and status code.', labelNames: ['method', 'route', 'status_code'], buckets: HTTP_BUCKETS, registers: [this.registry] });

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    options: MetricsOptions = {},
  ) {
    this.pipelines = new LabelCap(options.maxPipelines ?? 200);
    this.maxSteps = options.maxStepsPerPipeline ?? 100;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private pipelineLabel(name: string): string {
    return this.pipelines.of(name);
  }

  private stepLabel(pipeline: string, step: string): string {
    if (pipeline === OTHER) return OTHER;
    let cap = this.steps.get(pipeline);
    if (!cap) this.steps.set(pipeline, (cap = new LabelCap(this.maxSteps)));
    return cap.of(step);
  }

  observe(e: RunEvent): void {
    const [kind, status] = e.type.split('.') as [string, string];
    const pipeline = this.pipelineLabel(e.pipeline);
    this.ensurePipeline(pipeline);
    if (kind === 'run') return this.observeRun(e, pipeline, status);
    const step = this.stepLabel(pipeline, e.step ?? '');
    this.ensureStep(pipeline, step);
    this.stepsTotal.inc({ pipeline, step, status });
    if (status === 'queued' && e.data?.['reason'] === 'lease expired') this.leaseExpiries.inc({ pipeline });
    const ms = e.data?.['duration_ms'];
    if (typeof ms === 'number' && STEP_ENDS.includes(status)) this.stepDuration.observe({ pipeline, step, status }, ms / 1000);
  }

  private observeRun(e: RunEvent, pipeline: string, status: string): void {
    this.runs.inc({ pipeline, status });
    if (status === 'queued') {
      if (this.createdAt.size >= CREATED_CACHE_SIZE) this.createdAt.clear();
      this.createdAt.set(e.runId, e.at);
    }
    if (!RUN_ENDS.includes(status)) return;
    const created = this.createdAt.get(e.runId);
    this.createdAt.delete(e.runId);
    if (created !== undefined) return this.runDuration.observe({ pipeline, status }, (e.at - created) / 1000);
    // Queued before this server started: its creation time is in the store.
    void this.store.getRun(e.runId).then(
      (run) => run && this.runDuration.observe({ pipeline, status }, (e.at - run.createdAt) / 1000),
      () => undefined,
    );
  }

  /** One answered HTTP request; `route` is the matched route's pattern (`/api/runs/:id`), never the URL. */
  observeRequest(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    const labels = { method: METHODS.has(method) ? method : 'OTHER', route: route ?? 'unmatched', status_code: String(statusCode) };
    this.http.observe(labels, seconds);
  }

  /** Zero series for every registered pipeline (and its steps), so rates and alerts work before the first event. */
  private initSeries(pipelines: StoredPipeline[]): void {
    for (const p of pipelines) {
      const pipeline = this.pipelineLabel(p.name);
      this.ensurePipeline(pipeline);
      for (const s of p.definition.steps) this.ensureStep(pipeline, this.stepLabel(pipeline, s.name));
    }
  }

  /** The series of a pipeline, at zero, once: zeroing a histogram again would reset what it counted. */
  private ensurePipeline(pipeline: string): void {
    if (this.initialized.has(pipeline)) return;
    this.initialized.add(pipeline);
    this.leaseExpiries.inc({ pipeline }, 0);
    for (const status of ['queued', 'started', ...RUN_ENDS]) this.runs.inc({ pipeline, status }, 0);
    for (const status of RUN_ENDS) this.runDuration.zero({ pipeline, status });
  }

  /** The series of a step, at zero, once. */
  private ensureStep(pipeline: string, step: string): void {
    const key = JSON.stringify([pipeline, step]);
    if (this.initialized.has(key)) return;
    this.initialized.add(key);
    for (const status of STEP_ENDS) this.stepsTotal.inc({ pipeline, step, status }, 0);
    for (const status of ['succeeded', 'failed', 'retrying']) this.stepDuration.zero({ pipeline, step, status });
  }

  /** Queue depth and age per pipeline, read from the store (one grouped query); 0 for registered pipelines with none. */
  private async collectQueue(pipelines: StoredPipeline[]): Promise<void> {
    const now = this.now();
    const stats = await this.store.queueStats(now);
    const depth = new Map<string, number>();
    const age = new Map<string, number>();
    for (const p of pipelines) depth.set(this.pipelineLabel(p.name), 0);
    for (const q of stats) {
      const pipeline = this.pipelineLabel(q.pipeline);
      depth.set(pipeline, (depth.get(pipeline) ?? 0) + q.depth);
      // Folded pipelines: `other` shows the oldest wait of them all.
      const waited = q.oldestReadyAt === null ? 0 : Math.max(0, (now - q.oldestReadyAt) / 1000);
      age.set(pipeline, Math.max(age.get(pipeline) ?? 0, waited));
    }
    this.queueDepth.reset();
    this.queueAge.reset();
    for (const [pipeline, n] of depth) {
      this.queueDepth.set({ pipeline }, n);
      this.queueAge.set({ pipeline }, age.get(pipeline) ?? 0);
    }
  }

  /** The exposition text (format 0.0.4): this server's metrics, then the process's. */
  async render(_store?: Store): Promise<string> {
    const pipelines = await this.store.listPipelines();
    this.initSeries(pipelines);
    await this.collectQueue(pipelines);
    return `${await this.registry.metrics()}\n${await processMetrics().metrics()}`;
  }
}
