/**
 * The cancellation of one attempt, cheap to create for the many attempts that are never cancelled. An
 * AbortSignal is an EventTarget that takes microseconds to make and to listen to: this one makes its signal
 * only when a step asks for it (`ctx.signal`), and the executor waits for an abort with one callback.
 */
export class AttemptCancel {
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private isAborted = false;
  private listeners: Array<(reason: unknown) => void> | undefined;

  get aborted(): boolean {
    return this.isAborted;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  /** The attempt's AbortSignal, made on first use (already aborted if the attempt was). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts the attempt once; later calls change nothing. */
  abort(reason: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners ?? [];
    this.listeners = undefined;
    for (const listener of listeners) listener(reason);
  }

  /**
   * Calls `listener` when the attempt aborts (at once if it has). Listeners live as long as the attempt: one
   * called after the attempt ended settles nothing.
   */
  onAbort(listener: (reason: unknown) => void): void {
    if (this.isAborted) listener(this.abortReason);
    else (this.listeners ??= []).push(listener);
  }
}
