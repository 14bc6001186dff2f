import { SluiceError } from '../core/errors.js';
import { isTerminalRun } from '../core/state-machine.js';
import type { RunEvent, RunRecord } from '../store/store.js';

/** Options of {@link waitForRun}. */
export interface WaitOptions {
  /** How often a run worked elsewhere is read again, in ms. Default: 200. */
  pollMs?: number;
  /** Also resolve when the run waits for a human or is paused. Default: false. */
  untilSettled?: boolean;
  /** Rejects with its reason when it aborts (the run goes on). */
  signal?: AbortSignal;
  /** Rejects with WAIT_TIMEOUT after this many ms (the run goes on). Default: none. */
  timeout?: number;
}

/** What {@link waitForRun} reads runs and hears events through (the engine). */
export interface WaitDeps {
  requireRun(id: string): Promise<RunRecord>;
  subscribe(listener: (e: RunEvent) => void): () => void;
}

/**
 * Resolves when the run reaches a terminal state (or, with `untilSettled`, also when it waits for a
 * human or is paused). Events of this process wake it at once; runs worked elsewhere are polled. Rejects with
 * the abort reason when `signal` aborts, and with `WAIT_TIMEOUT` after `timeout` ms (the run goes on either way).
 */
export function waitForRun(deps: WaitDeps, runId: string, options: WaitOptions = {}): Promise<RunRecord> {
  const done = (run: RunRecord) => isTerminalRun(run.status) || (options.untilSettled === true && (run.status === 'paused' || run.status === 'waiting'));
  return new Promise((resolve, reject) => {
    let checking = false;
    let again = false;
    const check = async (): Promise<void> => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        const run = await deps.requireRun(runId);
        if (done(run)) {
          cleanup();
          resolve(run);
        }
      } catch (err) {
        cleanup();
        reject(err);
      } finally {
        checking = false;
      }
      if (again) {
        again = false;
        await check();
      }
    };
    const unsubscribe = deps.subscribe((e: RunEvent) => {
      if (e.runId === runId && e.step === null) void check();
    });
    const timer = setInterval(() => void check(), options.pollMs ?? 200);
    const onAbort = () => {
      cleanup();
      reject(options.signal?.reason);
    };
    const deadline = options.timeout === undefined ? undefined : setTimeout(() => {
      cleanup();
      reject(new SluiceError('WAIT_TIMEOUT', `run ${runId} did not finish within ${options.timeout} ms`, { details: { runId } }));
    }, options.timeout);
    const cleanup = () => {
      unsubscribe();
      clearInterval(timer);
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    void check();
  });
}
