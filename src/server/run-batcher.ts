import type { Engine, StartRunOptions } from '../engine/engine.js';
import type { CreatedRun } from '../store/store.js';

interface Pending {
  options: StartRunOptions;
  resolve: (run: CreatedRun) => void;
  reject: (err: unknown) => void;
}

/** Most runs created in one transaction. */
const MAX_BATCH = 256;

/**
 * Groups the run creations that arrive while the event loop is busy into one `engine.startRuns` call per
 * pipeline, i.e. one store transaction for many HTTP requests (a commit costs far more than a run's rows).
 * When a batch fails (one bad input fails the whole transaction), each request is retried alone so it gets
 * its own answer. Idempotency keys stay exact: the store checks each key inside the transaction, in order.
 */
export class RunBatcher {
  private readonly queues = new Map<string, Pending[]>();

  constructor(private readonly engine: Engine) {}

  start(pipeline: string, options: StartRunOptions): Promise<CreatedRun> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(pipeline);
      if (!queue) {
        queue = [];
        this.queues.set(pipeline, queue);
        setImmediate(() => void this.flush(pipeline));
      }
      queue.push({ options, resolve, reject });
    });
  }

  private async flush(pipeline: string): Promise<void> {
    const queue = this.queues.get(pipeline) ?? [];
    this.queues.delete(pipeline);
    for (let i = 0; i < queue.length; i += MAX_BATCH) await this.commit(pipeline, queue.slice(i, i + MAX_BATCH));
  }

  private async commit(pipeline: string, batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.alone(pipeline, batch[0]!);
    try {
      const created = await this.engine.startRuns(
        pipeline,
        batch.map((p) => p.options),
      );
      batch.forEach((p, i) => p.resolve(created[i]!));
    } catch {
      for (const p of batch) await this.alone(pipeline, p);
    }
  }

  private async alone(pipeline: string, p: Pending): Promise<void> {
    try {
      p.resolve(await this.engine.startRun(pipeline, p.options));
    } catch (err) {
      p.reject(err);
    }
  }
}
