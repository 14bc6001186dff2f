import { Worker } from 'node:worker_threads';
import { startModuleThread } from './thread-start.js';
import type { LogStream } from '../step-type.js';
import { checkedSize } from './sandbox-pool-options.js';
import type { SandboxResult, SandboxTask } from './sandbox.js';
import type { ThreadReply, ThreadRequest, ThreadSetup } from './sandbox-protocol.js';

/** Time between two thread terminations (see {@link SandboxThreadPool} kill). */
const TERMINATE_GAP_MS = 20;

/** Options of a {@link SandboxThreadPool}. */
export interface ThreadPoolOptions {
  /** Worker threads running sandboxes at once. Default: 1. */
  size?: number;
  /**
   * How long past its time limit a sandbox may go before its thread is terminated (one long native call,
   * such as a huge `JSON.parse`, does not reach the interrupt handler). Default: 250 ms.
   */
  graceMs?: number;
  /** A thread whose WASM memory grew beyond this is replaced after its task, returning the memory. Default: 128 MiB. */
  recycleBytes?: number;
  /** An idle thread exits after this long; 0 ends each thread after its task. Default: 30 s. */
  idleMs?: number;
  /** Niceness the threads give themselves on Linux; 0 leaves it as it is. Default: 0. */
  nice?: number;
}

/** What one execution needs from its caller while it runs. */
export interface SandboxCall {
  signal: AbortSignal;
  log(stream: LogStream, line: string): void;
}

interface Job {
  id: number;
  task: SandboxTask;
  call: SandboxCall;
  resolve(result: SandboxResult): void;
  onAbort(): void;
}

interface Thread {
  worker: Worker;
  cancel: Int32Array;
  job: Job | null;
  /** Watchdog of the running job, or the idle timer. */
  timer: NodeJS.Timeout | null;
  dead: boolean;
}

/**
 * Runs sandboxes in worker threads of a sandbox process (sandbox-process.ts), so user code at its CPU limit never
 * blocks the event loop that answers the engine (cancels, the engine's exit). Tasks beyond `size` wait in order. A
 * thread that overruns its deadline or does not stop when cancelled is terminated and replaced; so is one whose
 * WASM memory grew (memory of a WASM instance never shrinks until its thread exits). Idle threads do not keep the
 * process alive.
 */
export class SandboxThreadPool {
  private readonly threads = new Set<Thread>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private size: number;
  private readonly graceMs: number;
  private readonly recycleBytes: number;
  private readonly idleMs: number;
  private readonly nice: number;

  constructor(options: ThreadPoolOptions = {}) {
    this.size = options.size === undefined ? 1 : checkedSize(options.size, 'size');
    this.graceMs = options.graceMs ?? 250;
    this.recycleBytes = options.recycleBytes ?? 128 * 1024 * 1024;
    this.idleMs = options.idleMs ?? 30_000;
    this.nice = options.nice ?? 0;
  }

  /** Threads started and not yet exited. */
  get threadCount(): number {
    return this.threads.size;
  }

  /** Changes how many threads may run at once; threads beyond it exit when idle. */
  resize(size: number): void {
    this.size = checkedSize(size, 'codeWorkers');
    for (const thread of this.threads) if (thread.job === null && this.threads.size > size) this.retire(thread);
    this.dispatch();
  }

  /** Runs `task` in a thread of the pool; resolves with how it ended (never rejects). */
  run(task: SandboxTask, call: SandboxCall): Promise<SandboxResult> {
    if (call.signal.aborted) return Promise.resolve({ status: 'cancelled' });
    return new Promise((resolve) => {
      const job: Job = {
        id: this.nextId++,
        task,
        call,
        resolve: (result) => {
          call.signal.removeEventListener('abort', job.onAbort);
          resolve(result);
        },
        onAbort: () => this.abort(job),
      };
      call.signal.addEventListener('abort', job.onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Terminates every thread; running tasks end as `cancelled`. */
  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) job.resolve({ status: 'cancelled' });
    await Promise.all([...this.threads].map((thread) => this.kill(thread, { status: 'cancelled' })));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const thread = this.idleThread() ?? (this.threads.size < this.size ? this.spawn() : undefined);
      if (thread === undefined) return;
      this.assign(thread, this.queue.shift()!);
    }
  }

  private idleThread(): Thread | undefined {
    for (const thread of this.threads) if (thread.job === null && !thread.dead) return thread;
    return undefined;
  }

  private assign(thread: Thread, job: Job): void {
    this.clearTimer(thread);
    thread.job = job;
    Atomics.store(thread.cancel, 0, 0);
    // A busy thread keeps the process alive, as a pending step would.
    thread.worker.ref();
    const request: ThreadRequest = { id: job.id, task: job.task, cancel: thread.cancel.buffer as SharedArrayBuffer };
    thread.worker.postMessage(request);
  }

  private spawn(): Thread {
    const setup: ThreadSetup = { nice: this.nice };
    const worker = startModuleThread(import.meta.url, 'sandbox-thread', setup);
    const thread: Thread = { worker, cancel: new Int32Array(new SharedArrayBuffer(4)), job: null, timer: null, dead: false };
    worker.on('message', (reply: ThreadReply) => this.onReply(thread, reply));
    worker.on('error', (err) => this.onExit(thread, err.message));
    worker.on('exit', (code) => this.onExit(thread, `the sandbox thread exited with code ${code}`));
    this.threads.add(thread);
    return thread;
  }

  private onReply(thread: Thread, reply: ThreadReply): void {
    const job = thread.job;
    if (job === null || reply.id !== job.id) return;
    if (reply.type === 'logs') {
      for (const { stream, line } of reply.lines) job.call.log(stream, line);
      return;
    }
    if (reply.type === 'started') {
      if (thread.timer !== null) return;
      // The thread enforces the deadline itself; this catches the one long native call it cannot interrupt.
      thread.timer = setTimeout(() => void this.kill(thread, { status: 'timeout' }), job.task.timeoutMs + this.graceMs);
      return;
    }
    this.clearTimer(thread);
    thread.job = null;
    job.resolve(reply.result);
    if (reply.wasmBytes > this.recycleBytes || this.threads.size > this.size) this.retire(thread);
    else this.rest(thread);
    this.dispatch();
  }

  /** Cancels `job`: a queued one ends now; a running one is asked to stop, and terminated if it does not. */
  private abort(job: Job): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      job.resolve({ status: 'cancelled' });
      return;
    }
    const thread = [...this.threads].find((t) => t.job === job);
    if (thread === undefined) return;
    Atomics.store(thread.cancel, 0, 1);
    this.clearTimer(thread);
    thread.timer = setTimeout(() => void this.kill(thread, { status: 'cancelled' }), this.graceMs);
  }

  private rest(thread: Thread): void {
    thread.worker.unref();
    thread.timer = setTimeout(() => this.retire(thread), this.idleMs);
    thread.timer.unref();
  }

  /** The last termination queued: each waits for the one before it. */
  private terminating: Promise<void> = Promise.resolve();

  private retire(thread: Thread): void {
    void this.kill(thread, { status: 'cancelled' });
  }

  /** Terminates the thread; its job, if any, ends with `result`. The next task gets a fresh thread. */
  private async kill(thread: Thread, result: SandboxResult): Promise<void> {
    if (thread.dead) return;
    thread.dead = true;
    this.clearTimer(thread);
    this.threads.delete(thread);
    const job = thread.job;
    thread.job = null;
    job?.resolve(result);
    this.dispatch();
    // One at a time, a little apart: this thread waits while an ended thread's heap is freed, and several
    // sandboxes that used much memory, ended at once, stalled it for their sum (/healthz included).
    const worker = thread.worker;
    const ended = this.terminating.then(async () => {
      await worker.terminate();
      await new Promise((resolve) => setTimeout(resolve, TERMINATE_GAP_MS));
    });
    this.terminating = ended;
    await ended;
  }

  private onExit(thread: Thread, message: string): void {
    void this.kill(thread, { status: 'crashed', message });
  }

  private clearTimer(thread: Thread): void {
    if (thread.timer !== null) clearTimeout(thread.timer);
    thread.timer = null;
  }
}
