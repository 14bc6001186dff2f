import type { Store } from '../store/store.js';
import type { FoldOptions, FoldReport } from '../store/stats/rollup.js';

/** How often the leader folds finished runs into the stats rollup. Default: 10 s. */
export const DEFAULT_STATS_FOLD_EVERY_MS = 10_000;

/**
 * Folds finished runs into the stats rollup on a timer while `isLeading()` says this process leads the store (at
 * start, then every `everyMs`). A turn folds until it reaches the watermark, one short transaction per batch with
 * a turn of the event loop between batches, so a store with a long history folds it without holding the store;
 * nothing on the run path writes to the rollup.
 */
export class PeriodicStatsFold {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private busy = false;
  private stopped = false;

  constructor(
    private readonly store: Pick<Store, 'foldStats'>,
    private readonly options: { now: () => number; isLeading: () => boolean; onError: (err: unknown) => void; everyMs?: number; fold?: FoldOptions },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.everyMs ?? DEFAULT_STATS_FOLD_EVERY_MS);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One turn, when leading and no turn is running; resolves to its last batch's report. */
  async tick(): Promise<FoldReport | undefined> {
    if (this.busy || !this.options.isLeading()) return undefined;
    this.busy = true;
    const turn = this.turn().then(
      (r) => r,
      (err: unknown) => void this.options.onError(err),
    );
    this.running = turn.finally(() => (this.busy = false));
    return turn;
  }

  private async turn(): Promise<FoldReport | undefined> {
    let report: FoldReport | undefined;
    do {
      report = await this.store.foldStats(this.options.now(), this.options.fold);
      // Lets the run path in between batches of a long history.
      if (!report.done) await new Promise((resolve) => setImmediate(resolve));
    } while (!report.done && !this.stopped && this.options.isLeading());
    return report;
  }
}
