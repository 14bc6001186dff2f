/**
 * The graphile-worker settings shared by the in-process runner and the
 * child processes (bench/peers/graphile-child.ts).
 *
 * Batching is on, with the settings graphile-worker's own performance page
 * uses: `localQueue.size` 500 (jobs are fetched and locked 500 at a time; in
 * 0.17 this is also the get-job batch size) and `completeJobBatchDelay` /
 * `failJobBatchDelay` 0 (completions made in the same tick are written in one
 * statement).
 */
import { Logger, type RunnerOptions } from 'graphile-worker';

export const GRAPHILE_BATCHING = {
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
} as const;

export const GRAPHILE_BATCHING_LABEL = 'localQueue 500, completeJobBatchDelay 0';

/** A logger that drops everything: the benchmark prints nothing of its own. */
export const silentLogger = new Logger(() => () => undefined);

export function graphileRunnerOptions(connectionString: string, concurrency: number): RunnerOptions {
  return {
    connectionString,
    concurrency,
    maxPoolSize: Math.max(10, concurrency + 1),
    noHandleSignals: true,
    logger: silentLogger,
    crontab: '',
    taskList: {
      noop: async () => undefined,
    },
    preset: {
      worker: {
        localQueue: { ...GRAPHILE_BATCHING.localQueue },
        completeJobBatchDelay: GRAPHILE_BATCHING.completeJobBatchDelay,
        failJobBatchDelay: GRAPHILE_BATCHING.failJobBatchDelay,
      },
    },
  };
}
