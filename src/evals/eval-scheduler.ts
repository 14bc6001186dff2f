import { Cron } from 'croner';
import { SluiceError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { EvalReport } from './run-evals.js';
import { evalsAfterRun, runsEvalsAfter } from './evals-after-run.js';

/** When the nightly pass runs by default (`sluice serve --evals-cron`): 03:00 server time. */
export const DEFAULT_EVALS_CRON = '0 3 * * *';

/** The trigger-slot name of the nightly pass (a colon keeps it apart from every pipeline name). */
const NIGHTLY_SLOT = ':evals';

export interface EvalSchedulerOptions {
  /** Runs every pipeline's evals on this cron pattern (croner syntax); null or absent: only after runs. */
  cron?: string | null | undefined;
  /** Time zone of `cron`. Default: the server's. */
  timezone?: string | undefined;
  /** How often the cron is checked. Default: 1 s. */
  tickMs?: number;
  /** Called after each pass of a pipeline that has cases. */
  onReport?: (report: EvalReport) => void;
  /** Called when a pass fails (the pipeline could not be computed at all). */
  onError?: (err: unknown, pipeline: string) => void;
}

/**
 * Re-runs a pipeline's evals after every `run.succeeded` of that pipeline committed by this process, and (with
 * `cron`) every pipeline's evals on a schedule. One pass per pipeline at a time: a request while a pass runs
 * makes exactly one more pass after it. Across processes sharing a store, the scheduled pass is claimed as a
 * trigger slot so only one process runs it.
 */
export class EvalScheduler {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly abort = new AbortController();
  private readonly cron: Cron | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checkedUntil = 0;
  private ticking = false;

  constructor(
    private readonly engine: Engine,
    private readonly options: EvalSchedulerOptions = {},
  ) {
    this.cron = options.cron ? parseEvalsCron(options.cron, options.timezone) : undefined;
  }

  start(): void {
    this.unsubscribe = this.engine.subscribe((e) => {
      if (runsEvalsAfter(e)) this.request(e.pipeline);
    });
    if (this.cron) {
      this.checkedUntil = this.engine.clock.now();
      this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Runs the pipeline's evals now, or once more after the pass in flight. */
  request(pipeline: string): void {
    if (this.abort.signal.aborted) return;
    if (this.running.has(pipeline)) {
      this.again.add(pipeline);
      return;
    }
    this.running.set(pipeline, this.passes(pipeline));
  }

  /** Resolves once no pass is running or queued. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  /**
   * Fires the scheduled pass if its time came since the last check: requests a pass of every pipeline with
   * cases. Returns how many pipelines it requested.
   */
  async tick(now = this.engine.clock.now()): Promise<number> {
    if (!this.cron || this.ticking) return 0;
    this.ticking = true;
    try {
      const slot = this.cron.nextRun(new Date(this.checkedUntil))?.getTime();
      this.checkedUntil = now;
      if (slot === undefined || slot > now) return 0;
      const store = this.engine.store;
      if (!(await store.claimTriggerSlot(NIGHTLY_SLOT, slot, now))) return 0;
      let requested = 0;
      for (const name of await store.listEvalPipelines()) {
        if (!(await store.getPipeline(name))) continue;
        this.request(name);
        requested += 1;
      }
      return requested;
    } catch (err) {
      this.options.onError?.(err, NIGHTLY_SLOT);
      return 0;
    } finally {
      this.ticking = false;
    }
  }

  /** Stops scheduling, aborts the passes in flight and waits for them. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    await this.idle();
  }

  private async passes(pipeline: string): Promise<void> {
    try {
      do {
        this.again.delete(pipeline);
        await this.pass(pipeline);
      } while (this.again.has(pipeline) && !this.abort.signal.aborted);
    } finally {
      // No await between the last check and here: a request cannot slip in unseen.
      this.running.delete(pipeline);
      this.again.delete(pipeline);
    }
  }

  private async pass(pipeline: string): Promise<void> {
    try {
      const report = await evalsAfterRun(this.engine, pipeline, { signal: this.abort.signal });
      if (report !== null && report.summary.total > 0) this.options.onReport?.(report);
    } catch (err) {
      if (!this.abort.signal.aborted) this.options.onError?.(err, pipeline);
    }
  }
}

/** A paused croner schedule; VALIDATION_FAILED naming the pattern when it does not parse. */
export function parseEvalsCron(pattern: string, timezone?: string): Cron {
  try {
    return new Cron(pattern, { paused: true, ...(timezone ? { timezone } : {}) });
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `evals cron "${pattern}" is not a valid cron pattern: ${(err as Error).message}`);
  }
}
