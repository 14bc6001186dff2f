import type { Pipeline, Step, StepStatus } from './model.js';
import { settlesDependents } from './state-machine.js';

/** The initial state of one step of a new run. */
export interface PlannedStep {
  name: string;
  seq: number;
  status: 'pending' | 'skipped';
  /** How many needs must settle before the step may be queued. */
  waitingOn: number;
  priority: number;
}

/**
 * Plans the steps of a new run. Disabled steps and steps outside `selection` are skipped from the start;
 * a skipped need counts as settled, so dependents see `steps.<name>` = null.
 */
export function planRun(pipeline: Pipeline, selection: ReadonlySet<string> | null): PlannedStep[] {
  const skipped = new Set(
    pipeline.steps.filter((s) => s.disabled || (selection !== null && !selection.has(s.name))).map((s) => s.name),
  );
  return pipeline.steps.map((step, seq) => ({
    name: step.name,
    seq,
    status: skipped.has(step.name) ? 'skipped' : 'pending',
    waitingOn: step.needs.filter((n) => !skipped.has(n)).length,
    priority: step.priority,
  }));
}

/** Steps with nothing left to wait for, highest priority first, then in written order. */
export function initiallyReady(planned: PlannedStep[]): PlannedStep[] {
  return planned
    .filter((s) => s.status === 'pending' && s.waitingOn === 0)
    .sort((a, b) => b.priority - a.priority || a.seq - b.seq);
}

/**
 * Whether a need in state `status` lets its dependents proceed. A failed step with
 * `on_failure: continue` does; dependents then see its output as null.
 */
export function needIsSettled(status: StepStatus, step: Step | undefined): boolean {
  if (settlesDependents(status)) return true;
  return status === 'failed' && step?.onFailure === 'continue';
}

/** Counts the needs of `step` that have not settled, given the current states of the run's steps. */
export function unsettledNeeds(step: Step, statusOf: ReadonlyMap<string, StepStatus>, byName: ReadonlyMap<string, Step>): number {
  return step.needs.filter((n) => !needIsSettled(statusOf.get(n) ?? 'pending', byName.get(n))).length;
}
