import type { ErrorRecord } from '../core/errors.js';
import type { Step } from '../core/model.js';

/** A failed step of a run as both backends read it: its name and stored error (JSON text or parsed). */
export interface FailedStepRow {
  name: string;
  error: string | ErrorRecord | null;
}

/**
 * The error of a run that ends because steps failed for good: it names the first failed step and its error,
 * e.g. `step "classify" failed: COMMAND_FAILED: exit code 2`, and counts the others. Steps with
 * `on_failure: continue` did not fail the run and are not named. `failed` is in the order the steps failed.
 */
export function stepsFailedError(failed: readonly FailedStepRow[], byName: ReadonlyMap<string, Step>): ErrorRecord {
  const fatal = failed.filter((f) => byName.get(f.name)?.onFailure !== 'continue');
  const first = fatal[0] ?? failed[0];
  if (!first) return { code: 'STEP_FAILED', message: 'one or more steps failed' };
  const error = parseError(first.error);
  const cause = error ? `: ${error.code}: ${error.message}` : '';
  const others = fatal.length > 1 ? ` (and ${fatal.length - 1} more: ${fatal.slice(1).map((f) => f.name).join(', ')})` : '';
  return { code: 'STEP_FAILED', message: `step "${first.name}" failed${cause}${others}` };
}

function parseError(error: FailedStepRow['error']): ErrorRecord | null {
  if (error === null || typeof error !== 'string') return error;
  try {
    return JSON.parse(error) as ErrorRecord;
  } catch {
    return { code: 'STEP_FAILED', message: error };
  }
}
