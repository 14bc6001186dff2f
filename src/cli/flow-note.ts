import type { CreatedRun } from '../store/store.js';

/**
 * One line saying what the pipeline's flow rules did to a start (`sluice run` prints it to stderr), or null when
 * they did nothing visible: skipped for the active run, debounced, or delayed to a later start time.
 */
export function flowNote({ run, flow }: CreatedRun): string | null {
  if (!flow) return null;
  if (flow.skipped) return `singleton: run ${run.id} is active; no new run was started (following it)`;
  if (flow.after !== undefined) return `singleton: run ${run.id} is queued; it starts when run ${flow.after} ends`;
  const parts: string[] = [];
  if (flow.absorbed !== undefined) parts.push(`debounce: run ${run.id} stands for ${flow.absorbed} start request${flow.absorbed === 1 ? '' : 's'}`);
  if (flow.delayedBy !== undefined) parts.push(`${flow.delayedBy}: run ${run.id} is queued until ${new Date(run.runAt).toISOString()} (run_at)`);
  if (flow.cancels !== undefined) parts.push(`singleton: cancelled the active run ${flow.cancels}`);
  return parts.length > 0 ? parts.join('; ') : null;
}
