import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { startModuleThread } from '../steps/code/thread-start.js';
import { SluiceError } from '../core/errors.js';
import { EXPRESSION_TIME_LIMIT_MS, useIsolatedEvaluator } from '../core/expressions.js';
import type { ExpressionContext } from '../core/model.js';
import type { ExpressionReply, ExpressionRequest } from './expression-protocol.js';

/** Options of an {@link ExpressionPool}. */
export interface ExpressionPoolOptions {
  /** Threads evaluating at once. Default: min(4, cores), at least 2. */
  size?: number;
  /** How long one evaluation may run before its thread is terminated. Default: {@link EXPRESSION_TIME_LIMIT_MS} (5 s). */
  timeoutMs?: number;
  /** An idle thread exits after this long. Default: 30 s. */
  idleMs?: number;
}

interface Job {
  id: number;
  expr: string;
  ctx: ExpressionContext;
  resolve(value: unknown): void;
  reject(error: SluiceError): void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  /** Time limit of the running job, or the idle timer. */
  timer: NodeJS.Timeout | null;
  dead: boolean;
}

/**
 * Evaluates expressions that may run a regex in worker threads (src/core/expressions.ts decides which): a native
 * regex cannot be interrupted, so one that backtracks on its input would block the event loop that serves HTTP,
 * heartbeats and other runs. A thread past the time limit is terminated (which stops a running regex) and
 * replaced; its caller gets `EXPRESSION_TIMEOUT`. Jobs beyond `size` wait in order; the limit counts from the
 * start of the evaluation. Idle threads do not keep the process alive.
 */
export class ExpressionPool {
  private readonly threads = new Set<Thread>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly idleMs: number;

  constructor(options: ExpressionPoolOptions = {}) {
    this.size = options.size ?? Math.max(2, Math.min(4, availableParallelism()));
    this.timeoutMs = options.timeoutMs ?? EXPRESSION_TIME_LIMIT_MS;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** Threads started and not yet exited. */
  get threadCount(): number {
    return this.threads.size;
  }

  /** Evaluations running in a thread now (not those waiting for one). */
  get busyCount(): number {
    return [...this.threads].filter((thread) => thread.job !== null).length;
  }

  /** Evaluates `expr` against `ctx` in a thread; resolves with its plain JSON value. */
  evaluate(expr: string, ctx: ExpressionContext): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, expr, ctx, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates every thread; pending evaluations fail with EXPRESSION_FAILED. */
  async close(): Promise<void> {
    const closed = new SluiceError('EXPRESSION_FAILED', 'the expression pool was closed');
    for (const job of this.queue.splice(0)) job.reject(closed);
    await Promise.all([...this.threads].map((thread) => this.kill(thread, closed)));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const thread = this.idleThread();
      if (thread === undefined) {
        // A thread still loading takes the next job once it says it is ready.
        const loading = [...this.threads].filter((t) => !t.ready).length;
        if (loading < this.queue.length && this.threads.size < this.size) this.spawn();
        return;
      }
      this.assign(thread, this.queue.shift()!);
    }
  }

  private idleThread(): Thread | undefined {
    for (const thread of this.threads) if (thread.ready && thread.job === null && !thread.dead) return thread;
    return undefined;
  }

  private assign(thread: Thread, job: Job): void {
    this.clearTimer(thread);
    thread.job = job;
    // A busy thread keeps the process alive, as a pending step would.
    thread.worker.ref();
    thread.timer = setTimeout(() => void this.kill(thread, this.timeout(job)), this.timeoutMs);
    try {
      const request: ExpressionRequest = { id: job.id, expr: job.expr, ctx: job.ctx };
      thread.worker.postMessage(request);
    } catch (err) {
      // The context holds something a thread cannot receive (it is plain JSON from the store, but be safe).
      this.clearTimer(thread);
      thread.job = null;
      job.reject(new SluiceError('EXPRESSION_FAILED', `expression ${JSON.stringify(job.expr)} failed: its data cannot be sent to an expression thread (${String(err)})`));
      this.rest(thread);
    }
  }

  private timeout(job: Job): SluiceError {
    return new SluiceError(
      'EXPRESSION_TIMEOUT',
      `expression ${JSON.stringify(job.expr)} ran longer than ${this.timeoutMs} ms and was stopped (a regex that backtracks on its input runs this long; make the pattern match each character one way)`,
      { details: { expression: job.expr } },
    );
  }

  private spawn(): void {
    const worker = startModuleThread(import.meta.url, 'expression-thread');
    const thread: Thread = { worker, ready: false, job: null, timer: null, dead: false };
    worker.on('message', (reply: ExpressionReply) => this.onReply(thread, reply));
    worker.on('error', (err) => void this.kill(thread, crashed(err.message)));
    worker.on('exit', (code) => void this.kill(thread, crashed(`the expression thread exited with code ${code}`)));
    this.threads.add(thread);
  }

  private onReply(thread: Thread, reply: ExpressionReply): void {
    if (reply.type === 'ready') {
      thread.ready = true;
      this.rest(thread);
      this.dispatch();
      return;
    }
    const job = thread.job;
    if (job === null || reply.id !== job.id) return;
    this.clearTimer(thread);
    thread.job = null;
    if (reply.type === 'done') job.resolve(reply.value);
    else job.reject(new SluiceError(reply.code, reply.message, reply.details === undefined ? {} : { details: reply.details }));
    this.rest(thread);
    this.dispatch();
  }

  private rest(thread: Thread): void {
    thread.worker.unref();
    thread.timer = setTimeout(() => void this.kill(thread, crashed('idle')), this.idleMs);
    thread.timer.unref();
  }

  /** Terminates the thread; its job, if any, fails with `error`. The next job gets a fresh thread. */
  private async kill(thread: Thread, error: SluiceError): Promise<void> {
    if (thread.dead) return;
    thread.dead = true;
    this.clearTimer(thread);
    this.threads.delete(thread);
    const job = thread.job;
    thread.job = null;
    job?.reject(error);
    // A thread that died while loading would die again: fail what waits rather than start threads in a loop.
    if (!thread.ready) for (const queued of this.queue.splice(0)) queued.reject(error);
    this.dispatch();
    await thread.worker.terminate();
  }

  private clearTimer(thread: Thread): void {
    if (thread.timer !== null) clearTimeout(thread.timer);
    thread.timer = null;
  }
}

function crashed(message: string): SluiceError {
  return new SluiceError('EXPRESSION_FAILED', `the expression thread stopped: ${message}`);
}

let shared: ExpressionPool | undefined;

/** The process's pool, shared by every engine (threads are a per-process resource). */
export function expressionPool(): ExpressionPool {
  shared ??= new ExpressionPool();
  return shared;
}

/**
 * Makes expressions that may run a regex evaluate in the process's {@link ExpressionPool}. Called by every
 * engine; `options` (for tests and benchmarks) replace the pool, whose threads then exit.
 */
export function installExpressionPool(options?: ExpressionPoolOptions): void {
  if (options !== undefined) {
    void shared?.close();
    shared = new ExpressionPool(options);
  }
  useIsolatedEvaluator((expr, ctx) => expressionPool().evaluate(expr, ctx));
}

/**
 * Awaits `work` (a step's `if` or `with` evaluation); an `EXPRESSION_TIMEOUT` it throws names the step and where
 * (`if`, or `with.` followed by the key path the rendering put in front).
 */
export async function namingStep<T>(step: string, where: 'if' | 'with', work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const { code, message, details } = err as SluiceError;
    if (code !== 'EXPRESSION_TIMEOUT') throw err;
    const place = where === 'if' ? 'if: ' : 'with.';
    throw new SluiceError(code, `step ${JSON.stringify(step)} ${place}${message}`, { cause: err, details: { ...(details as object), step, in: where } });
  }
}
