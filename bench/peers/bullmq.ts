/**
 * BullMQ peer: no-op jobs through one Worker on a throwaway local Redis.
 *
 * Jobs are added up front with `addBulk` (in chunks), then the clock starts,
 * one Worker is constructed with the given concurrency and a no-op processor,
 * and the clock stops when its 'completed' event has fired for every job.
 * Job options are a typical production setup: `removeOnComplete: { count: 1000 }`
 * and `removeOnFail: { count: 5000 }` (keep a bounded history). BullMQ 6 talks to
 * Redis through ioredis, its usual driver (an optional peer dependency).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startRedis, type RedisServer } from '../support/redis.js';
import { packageVersion } from '../support/versions.js';
import { result, withTimeout, type PeerResult } from './types.js';

export interface BullmqOptions {
  jobs: number;
  concurrency: number;
  /** Use a Redis already listening on 127.0.0.1:port instead of starting one. */
  redisPort?: number;
  /** Jobs per addBulk call. Default 1000. */
  chunk?: number;
  /** Bound on the whole measurement, setup and teardown aside. Default 180 s. */
  timeoutMs?: number;
}

const JOB_OPTIONS = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } } as const;

export async function measureBullmq(opts: BullmqOptions): Promise<PeerResult> {
  const { jobs, concurrency } = opts;
  const chunk = opts.chunk ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const { Queue, Worker } = await import('bullmq');
  const name = `BullMQ ${packageVersion('bullmq')} (concurrency ${concurrency}, removeOnComplete {count: 1000}, ioredis ${packageVersion('ioredis')})`;

  let redis: RedisServer | undefined;
  let queue: InstanceType<typeof Queue> | undefined;
  let worker: { close(force?: boolean): Promise<void> } | undefined;
  try {
    if (opts.redisPort === undefined) redis = await startRedis();
    const connection = { host: '127.0.0.1', port: opts.redisPort ?? redis!.port };

    const queueName = `sluice-bench-${randomBytes(4).toString('hex')}`;
    queue = new Queue(queueName, { connection, defaultJobOptions: JOB_OPTIONS });
    queue.on('error', () => undefined);
    await withTimeout(queue.waitUntilReady(), 30_000, 'BullMQ queue connect');
    for (let i = 0; i < jobs; i += chunk) {
      const batch = [];
      for (let j = i; j < Math.min(jobs, i + chunk); j++) batch.push({ name: 'noop', data: { i: j } });
      await withTimeout(queue.addBulk(batch), 60_000, 'BullMQ addBulk');
    }
    const before = await queue.getJobCounts('wait');
    if (before.wait !== jobs) throw new Error(`BullMQ: expected ${jobs} waiting jobs, found ${before.wait}`);

    let completed = 0;
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const done = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const t0 = performance.now();
    const w = new Worker<unknown, unknown>(queueName, async () => undefined, { connection, concurrency });
    worker = w;
    w.on('completed', () => {
      completed += 1;
      if (completed === jobs) settle.resolve();
    });
    w.on('failed', (_job, err) => settle.reject(new Error(`BullMQ job failed: ${err.message}`)));
    w.on('error', (err) => settle.reject(err));
    await withTimeout(done, timeoutMs, `BullMQ run of ${jobs} jobs`);
    const seconds = (performance.now() - t0) / 1000;

    const after = await queue.getJobCounts('wait', 'active', 'delayed', 'failed');
    const left = (after.wait ?? 0) + (after.active ?? 0) + (after.delayed ?? 0) + (after.failed ?? 0);
    if (left !== 0) throw new Error(`BullMQ: ${left} jobs not completed: ${JSON.stringify(after)}`);
    return result(name, jobs, seconds);
  } finally {
    if (worker) {
      const w = worker;
      await withTimeout(w.close(), 10_000, 'BullMQ worker close').catch(() => w.close(true).catch(() => undefined));
    }
    if (queue) await withTimeout(queue.close(), 10_000, 'BullMQ queue close').catch(() => undefined);
    await redis?.stop();
  }
}
