import { SluiceError } from './errors.js';
import type { RunStatus, StepStatus } from './model.js';

/**
 * The one table of legal transitions. Stores enforce it with conditional updates
 * (`WHERE status IN (allowedFrom(target))`), so an illegal transition never overwrites state.
 */
const RUN_TRANSITIONS: Record<RunStatus, readonly RunStatus[]> = {
  // queued -> succeeded: a run whose every step was skipped has nothing to do.
  queued: ['running', 'paused', 'cancelled', 'failed', 'succeeded'],
  running: ['paused', 'waiting', 'succeeded', 'failed', 'cancelled'],
  paused: ['running', 'cancelled', 'failed'],
  waiting: ['running', 'paused', 'failed', 'cancelled'],
  // A finished run may be retried (re-run failed and cancelled steps) or rolled back to a step.
  succeeded: ['running'],
  failed: ['running'],
  cancelled: ['running'],
};

const STEP_TRANSITIONS: Record<StepStatus, readonly StepStatus[]> = {
  pending: ['queued', 'skipped', 'cancelled', 'cached'],
  queued: ['running', 'cancelled', 'pending'],
  running: ['succeeded', 'cached', 'skipped', 'failed', 'retrying', 'blocked', 'cancelled', 'queued', 'pending', 'waiting'],
  retrying: ['running', 'cancelled', 'pending'],
  blocked: ['queued', 'failed', 'cancelled', 'succeeded'],
  // A waiting step runs again when its time comes or its event arrives; it holds no lease meanwhile.
  waiting: ['running', 'cancelled', 'pending'],
  // Terminal states go back to pending only through resume, retry or rollback.
  succeeded: ['pending'],
  cached: ['pending'],
  skipped: ['pending'],
  failed: ['pending'],
  cancelled: ['pending'],
};

export const TERMINAL_RUN_STATES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];
export const TERMINAL_STEP_STATES: readonly StepStatus[] = ['succeeded', 'cached', 'skipped', 'failed', 'cancelled'];

export function canTransitionRun(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

export function canTransitionStep(from: StepStatus, to: StepStatus): boolean {
  return STEP_TRANSITIONS[from].includes(to);
}

/** Run states from which `to` may be entered. */
export function runStatesInto(to: RunStatus): RunStatus[] {
  return (Object.keys(RUN_TRANSITIONS) as RunStatus[]).filter((from) => RUN_TRANSITIONS[from].includes(to));
}

/** Step states from which `to` may be entered. */
export function stepStatesInto(to: StepStatus): StepStatus[] {
  return (Object.keys(STEP_TRANSITIONS) as StepStatus[]).filter((from) => STEP_TRANSITIONS[from].includes(to));
}

/** Throws ILLEGAL_TRANSITION unless `from -> to` is in the run table. */
export function assertRunTransition(runId: string, from: RunStatus, to: RunStatus): void {
  if (!canTransitionRun(from, to)) {
    throw new SluiceError('ILLEGAL_TRANSITION', `run ${runId} is ${from}; it cannot become ${to}`);
  }
}

export function isTerminalRun(status: RunStatus): boolean {
  return TERMINAL_RUN_STATES.includes(status);
}

export function isTerminalStep(status: StepStatus): boolean {
  return TERMINAL_STEP_STATES.includes(status);
}

/** Steps whose completion lets dependents proceed. */
export function settlesDependents(status: StepStatus): boolean {
  return status === 'succeeded' || status === 'cached' || status === 'skipped';
}
