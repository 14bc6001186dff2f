import type { ChildProcess } from 'node:child_process';
import type { LogStream } from '../step-type.js';
import { checkedSandboxOptions, checkedSize, defaultPoolSize, sandboxPoolSettings, type CodeSandboxOptions, type SandboxPoolSettings } from './sandbox-pool-options.js';
import type { SandboxResult, SandboxTask } from './sandbox.js';
import type { ProcessReply, ProcessRequest, ProcessSetup } from './sandbox-protocol.js';
import { startModuleProcess } from './thread-start.js';

export { defaultPoolSize } from './sandbox-pool-options.js';
export type { CodeSandboxOptions } from './sandbox-pool-options.js';

/**
 * How long a task may wait for user code to start (the process starting, its WASM module loading) before the
 * process is killed as stuck: generous, as a loaded machine is slow; it only catches a process that stopped answering.
 */
const START_LIMIT_MS = 30_000;

/** Options of a {@link SandboxPool}. */
export interface SandboxPoolOptions {
  /** Sandbox processes running at once. Default: `SLUICE_CODE_WORKERS`, else min(4, cores). */
  size?: number;
  /**
   * How long past its time limit a sandbox may go before its process is killed (one long native call, such as a
   * huge `JSON.parse`, does not reach the interrupt handler). Default: 250 ms.
   */
  graceMs?: number;
  /** A process whose WASM memory grew beyond this is replaced after its task, returning the memory. Default: 128 MiB. */
  recycleBytes?: number;
  /** An idle process exits after this long; 0 ends each process after its task. Default: 30 s. */
  idleMs?: number;
  /** Niceness of the processes (see {@link CodeSandboxOptions}); 0 leaves it as it is. Default: 10. */
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

interface Sandbox {
  child: ChildProcess;
  job: Job | null;
  /** Watchdog of the running job, or the idle timer. */
  timer: NodeJS.Timeout | null;
  dead: boolean;
}

/**
 * Runs sandboxes in child processes (sandbox-process.ts), so user code at its limits never blocks the event loop
 * that serves HTTP, heartbeats and other runs, nor shares its address space or (on Linux with autogrouping) its share
 * of the CPU. Tasks beyond `size` wait in order. A process enforces the time limit itself; one that overruns it (one
 * long native call) or whose task is cancelled is killed, and so is one whose WASM memory grew (it never shrinks
 * while the process lives), after its task. The next task gets a fresh process. Idle processes do not keep the
 * engine alive; a process whose engine is gone exits.
 */
export class SandboxPool {
  private readonly sandboxes = new Set<Sandbox>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private size: number;
  private readonly graceMs: number;
  private readonly recycleBytes: number;
  private idleMs: number;
  private nice: number;

  constructor(options: SandboxPoolOptions = {}) {
    this.size = options.size === undefined ? defaultPoolSize() : checkedSize(options.size, 'size');
    this.graceMs = options.graceMs ?? 250;
    this.recycleBytes = options.recycleBytes ?? 128 * 1024 * 1024;
    this.idleMs = options.idleMs ?? 30_000;
    this.nice = options.nice ?? 10;
  }

  /** Sandbox processes started and not yet ended. */
  get processCount(): number {
    return this.sandboxes.size;
  }

  /** Process ids of the sandbox processes started and not yet ended. */
  get pids(): number[] {
    return [...this.sandboxes].flatMap((sandbox) => (sandbox.child.pid === undefined ? [] : [sandbox.child.pid]));
  }

  /** Changes how many processes may run at once; processes beyond it exit when idle. */
  resize(size: number): void {
    this.size = checkedSize(size, 'codeWorkers');
    for (const sandbox of this.sandboxes) if (sandbox.job === null && this.sandboxes.size > size) this.end(sandbox);
    this.dispatch();
  }

  /**
   * Applies the settings given (checked already): the size at once (processes beyond it exit when idle), the idle
   * timeout from each process's next rest; idle processes of another niceness exit, so the next task gets a new one.
   */
  configure(settings: Partial<SandboxPoolSettings>): void {
    if (settings.idleMs !== undefined) this.idleMs = settings.idleMs;
    if (settings.nice !== undefined && settings.nice !== this.nice) {
      this.nice = settings.nice;
      for (const sandbox of this.sandboxes) if (sandbox.job === null) this.end(sandbox);
    }
    if (settings.size !== undefined) this.resize(settings.size);
  }

  /** Runs `task` in a process of the pool; resolves with how it ended (never rejects). */
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

  /** Kills every process; running tasks end as `cancelled`. */
  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) job.resolve({ status: 'cancelled' });
    await Promise.all([...this.sandboxes].map((sandbox) => this.kill(sandbox, { status: 'cancelled' })));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const sandbox = this.idleSandbox() ?? (this.sandboxes.size < this.size ? this.spawn() : undefined);
      if (sandbox === undefined) return;
      this.assign(sandbox, this.queue.shift()!);
    }
  }

  private idleSandbox(): Sandbox | undefined {
    for (const sandbox of this.sandboxes) if (sandbox.job === null && !sandbox.dead) return sandbox;
    return undefined;
  }

  private assign(sandbox: Sandbox, job: Job): void {
    this.clearTimer(sandbox);
    sandbox.job = job;
    // A busy process keeps the engine alive, as a pending step would.
    this.hold(sandbox, true);
    sandbox.timer = setTimeout(() => void this.kill(sandbox, { status: 'crashed', message: 'the sandbox process did not start the code' }), START_LIMIT_MS);
    this.send(sandbox, { id: job.id, task: job.task });
  }

  private spawn(): Sandbox {
    const setup: ProcessSetup = { nice: this.nice };
    const child = startModuleProcess(import.meta.url, 'sandbox-process', JSON.stringify(setup));
    const sandbox: Sandbox = { child, job: null, timer: null, dead: false };
    child.on('message', (reply: ProcessReply) => this.onReply(sandbox, reply));
    child.on('error', (err) => this.onExit(sandbox, `the sandbox process failed: ${err.message}`));
    child.on('exit', (code, signal) => this.onExit(sandbox, `the sandbox process exited with ${signal ?? `code ${code}`}`));
    this.sandboxes.add(sandbox);
    return sandbox;
  }

  private send(sandbox: Sandbox, request: ProcessRequest): void {
    if (!sandbox.child.connected) return;
    sandbox.child.send(request, (err) => {
      if (err) this.onExit(sandbox, `the sandbox process could not be reached: ${err.message}`);
    });
  }

  private onReply(sandbox: Sandbox, reply: ProcessReply): void {
    const job = sandbox.job;
    if (job === null || reply.id !== job.id) return;
    if (reply.type === 'logs') {
      for (const { stream, line } of reply.lines) job.call.log(stream, line);
      return;
    }
    if (reply.type === 'started') {
      // The process enforces the deadline itself; this catches the one long native call it cannot interrupt.
      this.clearTimer(sandbox);
      sandbox.timer = setTimeout(() => void this.kill(sandbox, { status: 'timeout' }), job.task.timeoutMs + this.graceMs);
      return;
    }
    this.clearTimer(sandbox);
    sandbox.job = null;
    job.resolve(reply.result);
    if (reply.wasmBytes > this.recycleBytes || this.sandboxes.size > this.size) this.end(sandbox);
    else this.rest(sandbox);
    this.dispatch();
  }

  /**
   * Cancels `job`: a queued one ends now; a running one with its process, killed at once (its event loop is blocked
   * while the sandbox runs, so it could not read a request to stop). Its console lines of the last 20 ms are lost.
   */
  private abort(job: Job): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      job.resolve({ status: 'cancelled' });
      return;
    }
    const sandbox = [...this.sandboxes].find((s) => s.job === job);
    if (sandbox !== undefined) void this.kill(sandbox, { status: 'cancelled' });
  }

  private rest(sandbox: Sandbox): void {
    this.hold(sandbox, false);
    sandbox.timer = setTimeout(() => this.end(sandbox), this.idleMs);
    sandbox.timer.unref();
  }

  /** Whether the process (and its IPC channel) keeps the engine's event loop alive. */
  private hold(sandbox: Sandbox, held: boolean): void {
    const { child } = sandbox;
    const channel = child.channel as { ref?(): void; unref?(): void } | null | undefined;
    if (held) {
      child.ref();
      channel?.ref?.();
    } else {
      child.unref();
      channel?.unref?.();
    }
  }

  private end(sandbox: Sandbox): void {
    void this.kill(sandbox, { status: 'cancelled' });
  }

  /** Kills the process; its job, if any, ends with `result`. The next task gets a fresh process. */
  private async kill(sandbox: Sandbox, result: SandboxResult): Promise<void> {
    if (sandbox.dead) return;
    sandbox.dead = true;
    this.clearTimer(sandbox);
    this.sandboxes.delete(sandbox);
    const job = sandbox.job;
    sandbox.job = null;
    job?.resolve(result);
    this.dispatch();
    const { child } = sandbox;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Referenced again, so whoever awaits this sees the exit rather than an event loop left with nothing to do.
    child.ref();
    child.kill('SIGKILL');
    await exited;
  }

  private onExit(sandbox: Sandbox, message: string): void {
    void this.kill(sandbox, { status: 'crashed', message });
  }

  private clearTimer(sandbox: Sandbox): void {
    if (sandbox.timer !== null) clearTimeout(sandbox.timer);
    sandbox.timer = null;
  }
}

let shared: SandboxPool | undefined;

/** The process's pool, shared by every `code` step of every engine. */
export function sandboxPool(): SandboxPool {
  shared ??= new SandboxPool(sandboxPoolSettings());
  return shared;
}

/**
 * Configures the process's pool: a number sets its size (engine option `codeWorkers`), options change what they
 * name (engine option `codeSandbox`) and keep the rest. Either way the pool is created first if need be, from the
 * environment, so bad `SLUICE_CODE_*` values are refused here too. Bad values throw `VALIDATION_FAILED`.
 */
export function configureSandboxPool(options?: number | CodeSandboxOptions): void {
  if (typeof options === 'number') return sandboxPool().resize(options);
  // Checked before the pool exists, so a bad option is named as itself even when the environment is bad too.
  const settings = options === undefined ? {} : checkedSandboxOptions(options);
  sandboxPool().configure(settings);
}
