import { SluiceError, toErrorRecord, errorMessage } from '../core/errors.js';
import type { AttemptResult, ClaimBatch, ClaimedAttempt, ClaimRequest, LogLine, RunEvent } from '../store/store.js';
import type { RunPort } from '../store/ports.js';
import { isValueRefused } from '../store/store-errors.js';
import { AttemptCancel } from './attempt-cancel.js';
import { crashPoint } from '../steps/crash-points.js';
import type { Executor } from './executor.js';
import { isOwnerDead } from './owner.js';
import { capErrorRecord, DEFAULT_MAX_LOG_BYTES, LogBudget } from './output-caps.js';
import { endOrphanedCommands } from '../steps/command/command-registry.js';
import { silentLogger, type EngineLogger } from './engine-log.js';

export interface WorkerOptions {
  /** Attempts executed at once. Default: 16. */
  concurrency?: number;
  /** Lease length. Default: 30 s. */
  leaseMs?: number;
  /** How often leases are extended (and cancellations by other processes noticed). Default: 2 s, at most a third of the lease. */
  heartbeatMs?: number;
  /** How often the store is polled when nothing wakes the worker. Default: 250 ms. */
  pollMs?: number;
  /** How often expired leases and overdue runs are reaped. Default: 1 s. */
  reapMs?: number;
  /** Only claim attempts of this run (the CLI's `run` works on its own run). */
  runId?: string;
  /** Called when this worker starts or stops leading the store (only the leader reaps; see Store.campaign). */
  onLeadership?: (leading: boolean) => void;
  /** Log bytes (UTF-8) kept per attempt; the rest is dropped and counted in one marker line. Default: 10 MiB. */
  maxLogBytesPerAttempt?: number;
}

export interface WorkerDeps {
  store: RunPort;
  executor: Executor;
  owner: string;
  now(): number;
  publish(events: readonly RunEvent[]): void;
  onError(err: unknown): void;
  /** Where leadership changes and reaps are logged. Default: nowhere. */
  logger?: EngineLogger;
}

interface Active {
  attempt: ClaimedAttempt;
  cancel: AttemptCancel;
  /** What is left of the attempt's log budget. */
  logs: LogBudget;
}

/**
 * Claims attempts in batches, executes them concurrently and records results in batches: one
 * transaction claims many attempts and one transaction records many results, which is what makes
 * an embedded store fast.
 */
export class Worker {
  private readonly active = new Map<number, Active>();
  private readonly results: AttemptResult[] = [];
  /** Attempts that finished and whose results are in the transaction being committed. */
  private readonly finishedIds = new Set<number>();
  /**
   * Attempts whose step has not returned yet, with the fence of their lease. An attempt's id is its step's, so a
   * step tried again has the same id: the fence tells its leases apart.
   */
  private readonly executing = new Map<number, number>();
  /** Attempts aborted by shutdown: their results are never recorded. */
  private readonly abandoned = new Set<number>();
  private readonly logs: LogLine[] = [];
  private readonly opts: Required<Omit<WorkerOptions, 'runId' | 'onLeadership'>> & Pick<WorkerOptions, 'runId' | 'onLeadership'>;
  /** Whether this worker leads the store: always on a store without elections (one process). */
  private leader: boolean;
  /** Ends the campaign for leadership, when the store holds elections. */
  private resign: Promise<(() => Promise<void>) | undefined> = Promise.resolve(undefined);
  private stopped = false;
  /**
   * Whether the last recorded batch may have left claimable work behind: its transaction claimed as many as it
   * asked for, or asked for none. When its claim came back short, the loop need not claim again at once: the
   * claim ran after the batch's own writes, in the same transaction, and saw all that was available.
   */
  private claimMayFindMore = false;
  private wakeUp: (() => void) | null = null;
  private pendingWake = false;
  private flushing: Promise<void> | null = null;
  private flushFailures = 0;
  private timers: NodeJS.Timeout[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  /** Ends the store's wake-up subscription, when the store offers one. */
  private unsubscribe: Promise<(() => Promise<void>) | undefined> = Promise.resolve(undefined);

  constructor(
    private readonly deps: WorkerDeps,
    options: WorkerOptions = {},
  ) {
    const leaseMs = options.leaseMs ?? 30_000;
    this.opts = {
      concurrency: options.concurrency ?? 16,
      leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.max(10, Math.min(2000, Math.floor(leaseMs / 3))),
      pollMs: options.pollMs ?? 250,
      reapMs: options.reapMs ?? 1000,
      maxLogBytesPerAttempt: options.maxLogBytesPerAttempt ?? DEFAULT_MAX_LOG_BYTES,
      ...(options.runId === undefined ? {} : { runId: options.runId }),
      ...(options.onLeadership === undefined ? {} : { onLeadership: options.onLeadership }),
    };
    this.leader = !deps.store.capabilities.leaderElection;
  }

  /** Whether this worker leads the store (and so reaps expired leases). */
  get leading(): boolean {
    return this.leader;
  }

  get owner(): string {
    return this.deps.owner;
  }

  get activeCount(): number {
    return this.active.size;
  }

  start(): void {
    this.timers.push(setInterval(() => void this.heartbeat(), this.opts.heartbeatMs));
    this.timers.push(setInterval(() => void this.reap(), this.opts.reapMs));
    this.loopDone = this.loop();
    void this.reap();
    // Wake-ups from other processes (LISTEN/NOTIFY); polling stays as the fallback.
    const { store } = this.deps;
    if (store.capabilities.listenNotify) this.unsubscribe = store.subscribeWakeups(() => this.wake()).catch((err: unknown) => void this.deps.onError(err));
    // Without elections this process leads from the start (see the constructor).
    if (!store.capabilities.leaderElection) return;
    const campaign = store.campaign((leading) => {
      this.leader = leading;
      (this.deps.logger ?? silentLogger).info({ owner: this.deps.owner, leading }, leading ? 'leads the store: reaps expired leases' : 'no longer leads the store');
      this.opts.onLeadership?.(leading);
      if (leading) void this.reap();
    });
    this.resign = campaign.catch((err: unknown) => void this.deps.onError(err));
  }

  /** Wakes the claim loop now (new work was queued in this process). */
  wake(): void {
    this.pendingWake = true;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** What this worker can take on now, for a store call that claims in its own transaction. */
  claimRequest(): ClaimRequest | undefined {
    // Attempts whose results are being recorded no longer hold a slot.
    const limit = this.stopped ? 0 : this.opts.concurrency - this.active.size + this.finishedIds.size;
    if (limit <= 0) return undefined;
    return { owner: this.deps.owner, limit, leaseMs: this.opts.leaseMs, ...(this.opts.runId === undefined ? {} : { only: { runId: this.opts.runId } }) };
  }

  /** Starts attempts that another call claimed for this worker, then looks for more. */
  adopt(batch: ClaimBatch): void {
    this.publish(batch.events);
    for (const attempt of batch.attempts) this.begin(attempt);
    this.wake();
  }

  /** Aborts the attempts of a run this worker is executing (cancel, pause does not abort). */
  abortRun(runId: string, reason: SluiceError): void {
    for (const a of this.active.values()) if (a.attempt.runId === runId) a.cancel.abort(reason);
  }

  /**
   * Stops claiming and lets active attempts finish for up to `graceMs`. Attempts still running then are
   * aborted and abandoned: no result is recorded for them, so another worker takes them over once their
   * lease expires (at once, on this host, when this process has exited).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    this.wake();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const deadline = Date.now() + graceMs;
    while (this.executing.size > 0 && Date.now() < deadline) await delay(5);
    for (const id of this.executing.keys()) {
      this.abandoned.add(id);
      this.active.get(id)?.cancel.abort(new SluiceError('CANCELLED', 'the worker is shutting down', { retryable: true }));
    }
    while (this.executing.size > 0) await delay(5);
    // Whatever is still unrecorded after this last try is left to lease expiry.
    while (this.flushing) await this.flushing;
    await this.flush();
    await this.loopDone;
    await (await this.unsubscribe)?.();
    await (await this.resign)?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.pendingWake = false;
      const free = this.opts.concurrency - this.active.size;
      let claimed = 0;
      if (free > 0) claimed = await this.claim(free);
      if (this.stopped) break;
      // A full batch suggests more is waiting; let executions progress a tick, then claim again.
      if (claimed > 0 && claimed === free) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      if (!this.pendingWake) await this.sleep(this.opts.pollMs);
    }
  }

  /** Publishes committed events; attempts of runs that just ended are aborted at once. */
  private publish(events: readonly RunEvent[]): void {
    this.deps.publish(events);
    this.abortEnded(events);
  }

  /** Aborts the attempts of runs that these committed events ended (cancel, failure, a parent's cancel). */
  abortEnded(events: readonly RunEvent[]): void {
    for (const e of events) {
      if (e.type === 'run.cancelled' || e.type === 'run.failed') this.abortRun(e.runId, new SluiceError('CANCELLED', `run ${e.runId} ended`));
    }
  }

  private async claim(limit: number): Promise<number> {
    try {
      const only = this.opts.runId === undefined ? undefined : { runId: this.opts.runId };
      const batch = await this.deps.store.claimAttempts(this.deps.owner, limit, this.opts.leaseMs, this.deps.now(), only);
      this.publish(batch.events);
      for (const attempt of batch.attempts) this.begin(attempt);
      return batch.attempts.length;
    } catch (err) {
      this.deps.onError(err);
      return 0;
    }
  }

  private begin(attempt: ClaimedAttempt): void {
    const cancel = new AttemptCancel();
    // This worker still runs an earlier lease of the step (it lost that lease while it ran): that one's result
    // would be rejected, so it is cancelled and left unrecorded.
    this.active.get(attempt.id)?.cancel.abort(new SluiceError('CANCELLED', 'the attempt lost its lease'));
    this.active.set(attempt.id, { attempt, cancel, logs: new LogBudget(this.opts.maxLogBytesPerAttempt) });
    this.executing.set(attempt.id, attempt.fence);
    this.deps.executor.execute(attempt, this.deps.owner, cancel).then(
      (result) => this.finished(result),
      (err) => this.finished(this.crashResult(attempt, err)),
    );
  }

  private crashResult(attempt: ClaimedAttempt, err: unknown): AttemptResult {
    return { attemptId: attempt.id, fence: attempt.fence, owner: this.deps.owner, outcome: 'failed', error: toErrorRecord(err), processingMs: 0 };
  }

  private finished(result: AttemptResult): void {
    const active = this.active.get(result.attemptId);
    // An earlier lease of a step this worker holds again: its result is stale.
    if (active && active.attempt.fence !== result.fence) return;
    this.executing.delete(result.attemptId);
    if (this.abandoned.has(result.attemptId)) return;
    const marker = active?.logs.marker();
    if (active && marker !== undefined) this.logs.push(this.logLine(active.attempt, 'warn', marker));
    // Whatever a step threw, a stored error stays readable: message and stack are capped.
    if (result.error) result.error = capErrorRecord(result.error);
    this.results.push(result);
    if (!this.flushing) this.flushing = new Promise((r) => setImmediate(r)).then(() => this.flush());
  }

  /**
   * Records buffered logs and results, each batch in one transaction. When the store fails (a restart, a
   * lost connection), nothing of the batch was recorded: it goes back to the buffer and is tried again
   * with backoff, so no result is dropped and no slot leaks.
   */
  private async flush(): Promise<void> {
    let failed = false;
    try {
      while (this.results.length > 0 || this.logs.length > 0) {
        await this.flushLogs();
        const results = this.results.splice(0);
        if (results.length === 0) continue;
        try {
          await this.commit(results);
        } catch (err) {
          for (const r of results) this.finishedIds.delete(r.attemptId);
          // A refused value is refused again on every try: find the results concerned and fail their attempts.
          if (isValueRefused(err)) await this.commitApart(results);
          else {
            this.results.unshift(...results);
            throw err;
          }
        }
      }
      this.flushFailures = 0;
    } catch (err) {
      failed = true;
      this.deps.onError(err);
    } finally {
      this.flushing = null;
      if (failed) this.retryFlush();
      else if (this.claimMayFindMore) {
        this.claimMayFindMore = false;
        this.wake();
      }
    }
  }

  /**
   * Writes buffered log lines in transactions of about {@link LOG_FLUSH_BYTES}, yielding to the event loop once
   * a slice of writing has taken {@link LOG_SLICE_MS}: a step that logged megabytes does not hold an embedded
   * store (and HTTP) in one long write.
   */
  private async flushLogs(): Promise<void> {
    let sliceStart = performance.now();
    while (this.logs.length > 0) {
      await this.appendLogChunk(this.logs.splice(0, logChunkLength(this.logs)));
      if (this.logs.length > 0 && performance.now() - sliceStart >= LOG_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }

  /** Writes one chunk of log lines; lines the store refuses are dropped (and reported), one by one, so they never hold back the others. */
  private async appendLogChunk(logs: LogLine[]): Promise<void> {
    try {
      await this.deps.store.appendLogs(logs);
    } catch (err) {
      if (!isValueRefused(err)) {
        this.logs.unshift(...logs);
        throw err;
      }
      for (const [i, line] of logs.entries()) {
        try {
          await this.deps.store.appendLogs([line]);
        } catch (lineErr) {
          if (isValueRefused(lineErr)) this.deps.onError(lineErr);
          else {
            this.logs.unshift(...logs.slice(i));
            throw lineErr;
          }
        }
      }
    }
  }

  /**
   * Records results one at a time after the store refused a value of their batch. A result the store refuses
   * fails its attempt with `OUTPUT_INVALID` instead (the run then goes on by its retry and failure policy); if
   * even that is refused, the result is dropped and its attempt left to lease expiry. Any other failure puts the
   * results not recorded yet back in the buffer.
   */
  private async commitApart(results: AttemptResult[]): Promise<void> {
    for (const [i, r] of results.entries()) {
      try {
        await this.commitOne(r);
      } catch (err) {
        for (const rest of results.slice(i)) this.finishedIds.delete(rest.attemptId);
        if (!isValueRefused(err)) {
          this.results.unshift(...results.slice(i));
          throw err;
        }
        this.forget(r);
        this.deps.onError(err);
      }
    }
  }

  /** Records one result, or its attempt's `OUTPUT_INVALID` failure when the store refuses a value of it. */
  private async commitOne(r: AttemptResult): Promise<void> {
    try {
      await this.commit([r]);
    } catch (err) {
      this.finishedIds.delete(r.attemptId);
      if (!isValueRefused(err)) throw err;
      await this.commit([outputInvalid(r, err)]);
    }
  }

  private async commit(results: AttemptResult[]): Promise<void> {
    // Reading the environment costs microseconds: once per batch, not twice per result.
    const crashPointsArmed = process.env['SLUICE_CRASH_POINT'] !== undefined;
    if (crashPointsArmed) for (const r of results) crashPoint('before-commit', this.active.get(r.attemptId)?.attempt.step ?? '');
    // Slots freed by these results are refilled in the same transaction.
    for (const r of results) this.finishedIds.add(r.attemptId);
    const request = this.claimRequest();
    const batch = await this.deps.store.completeAttempts(results, this.deps.now(), request);
    if (request === undefined || batch.claimed.length >= request.limit) this.claimMayFindMore = true;
    if (crashPointsArmed) for (const r of results) crashPoint('after-commit', this.active.get(r.attemptId)?.attempt.step ?? '');
    for (const r of results) {
      this.forget(r);
      this.finishedIds.delete(r.attemptId);
    }
    this.publish(batch.events);
    for (const attempt of batch.claimed) this.begin(attempt);
  }

  /** Drops the attempt of a recorded (or dropped) result, unless this worker already holds a later lease of its step. */
  private forget(r: AttemptResult): void {
    if (this.active.get(r.attemptId)?.attempt.fence === r.fence) this.active.delete(r.attemptId);
  }

  /** Tries the failed flush again after 100 ms, doubling up to 5 s. */
  private retryFlush(): void {
    // A stopping worker makes one last try in stop(); what stays unrecorded is left to lease expiry.
    if (this.stopped) return;
    this.flushFailures += 1;
    const delayMs = Math.min(5000, 100 * 2 ** (this.flushFailures - 1));
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (!this.flushing && (this.results.length > 0 || this.logs.length > 0)) this.flushing = this.flush();
    }, delayMs);
    this.timers.push(timer);
  }

  /**
   * Buffers a log line of a running attempt, within the attempt's log budget. Lines of an attempt whose step
   * already returned (a step that ignored its timeout) are dropped: its log is complete.
   */
  log(attempt: ClaimedAttempt, stream: string, line: string): void {
    const active = this.active.get(attempt.id);
    if (active === undefined || this.executing.get(attempt.id) !== attempt.fence) return;
    const kept = active.logs.admit(line);
    if (kept !== undefined) this.logs.push(this.logLine(attempt, stream, kept));
  }

  private logLine(attempt: ClaimedAttempt, stream: string, line: string): LogLine {
    return { runId: attempt.runId, step: attempt.step, attempt: attempt.number, stream, line, at: this.deps.now() };
  }

  private async heartbeat(): Promise<void> {
    if (this.active.size === 0) return;
    try {
      const ids = [...this.active.keys()];
      const lost = await this.deps.store.heartbeat(this.deps.owner, ids, this.opts.leaseMs, this.deps.now());
      for (const id of lost) {
        this.active.get(id)?.cancel.abort(new SluiceError('CANCELLED', 'the attempt was cancelled or its lease was lost'));
      }
    } catch (err) {
      this.deps.onError(err);
    }
  }

  private async reap(): Promise<void> {
    if (!this.leader) return;
    try {
      // A dead worker's attempt is handed to a worker only once the commands it left on this machine are gone.
      await endOrphanedCommands();
      const result = await this.deps.store.reap(this.deps.now(), isOwnerDead);
      this.publish(result.events);
      logReap(this.deps.logger ?? silentLogger, this.deps.owner, result);
      if (result.expired > 0) this.wake();
    } catch (err) {
      this.deps.onError(err);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** Log bytes written per transaction when a flush has more: a few milliseconds of SQLite on a loaded machine. */
const LOG_FLUSH_BYTES = 64 * 1024;
/** Writing time after which a log flush yields to the event loop (HTTP, messages of sandbox threads). */
const LOG_SLICE_MS = 5;

/** How many of the first `logs` make up about {@link LOG_FLUSH_BYTES} (at least one line). */
function logChunkLength(logs: readonly LogLine[]): number {
  let bytes = 0;
  for (let i = 0; i < logs.length; i += 1) {
    bytes += logs[i]!.line.length;
    if (bytes >= LOG_FLUSH_BYTES) return i + 1;
  }
  return logs.length;
}

/** `r` as a failed attempt whose result the store refused; the retry policy of its step applies as to any failure. */
function outputInvalid(r: AttemptResult, err: unknown): AttemptResult {
  const reason = errorMessage(err);
  const error = { code: 'OUTPUT_INVALID', message: `the ${r.outcome} result of this attempt could not be recorded: ${reason}` };
  return { attemptId: r.attemptId, fence: r.fence, owner: r.owner, outcome: 'failed', error, processingMs: r.processingMs };
}

/** One line per reap that re-queued attempts or failed overdue runs (each attempt and run has its own line too). */
export function logReap(logger: EngineLogger, owner: string, result: { expired: number; timedOutRuns: number }): void {
  if (result.expired === 0 && result.timedOutRuns === 0) return;
  logger.info({ owner, expired: result.expired, timed_out_runs: result.timedOutRuns }, 'reaped expired leases and overdue runs');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
