import type { ClaimedAttempt } from '../store.js';

/**
 * The outputs a completion transaction wrote, by run and step, as the JSON text the store reads back (SQLite keeps
 * the text as written; PostgreSQL's jsonb rewrites it, so its driver records what the UPDATE returned). An attempt
 * the same transaction leases gets those of its run (`ClaimedAttempt.upstream`), so that its executor need not read
 * them back: a chain's next step reads its input from here. A run for which the transaction recorded anything but
 * a step's plain end (a failure, a rewind, a block, a child run, a decision) is left out, as such a rule may change
 * what other steps hold.
 */
export class WrittenOutputs {
  private readonly byRun = new Map<string, Record<string, string>>();
  private readonly spoiled = new Set<string>();

  record(runId: string, step: string, output: string): void {
    if (this.spoiled.has(runId)) return;
    let steps = this.byRun.get(runId);
    if (!steps) this.byRun.set(runId, (steps = {}));
    steps[step] = output;
  }

  spoil(runId: string): void {
    this.spoiled.add(runId);
    this.byRun.delete(runId);
  }

  attach(attempts: ClaimedAttempt[]): void {
    if (this.byRun.size === 0) return;
    for (const a of attempts) {
      const steps = this.byRun.get(a.runId);
      if (steps) a.upstream = steps;
    }
  }
}
