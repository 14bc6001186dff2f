import { toStoredPipeline, type PipelineRow, type RunRow, type StepRow } from '../rows.js';
import type { AttemptResult, RunEvent } from '../store.js';
import { createRunIn, recordFailure, type Tx } from './pg-attempts.js';
import { sql } from './pg-store-sql.js';
import { pgJson } from './pg-json.js';

/*
 * Child runs of `pipeline` steps on PostgreSQL (ported from the SQLite backend): the step starts its child run in
 * its own transaction and stays running, holding no lease, until the child ends.
 */

/** A `pipeline` step starts its child run in the same transaction; see {@link endChild}. */
export async function spawnChild(tx: Tx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): Promise<void> {
  const request = r.spawn!;
  const [child] = await sql<PipelineRow>(tx.client, 'latestPipeline', [request.pipeline]);
  if (!child) {
    const error = { code: 'PIPELINE_NOT_FOUND', message: `step ${step} runs pipeline ${request.pipeline}, which is not registered`, retryable: false };
    await recordFailure(tx, run, step, number, { ...r, outcome: 'failed', error, retryable: false }, now, events);
    return;
  }
  const created = await createRunIn(tx, { pipeline: toStoredPipeline(child), input: request.input, parent: { runId: run.id, step } }, now);
  await sql(tx.client, 'setStepOutput', [run.id, step, pgJson({ child_run: created.run.id })]);
  events.push(...created.events);
  tx.wake = true;
}

/** A child run ended: its parent's `pipeline` step succeeds with the child's outputs, or fails. */
export async function endChild(tx: Tx, childId: string, status: 'succeeded' | 'failed' | 'cancelled', now: number, events: RunEvent[]): Promise<void> {
  const { client, t } = tx;
  const child = await t.getRun(childId);
  if (!child?.parent_run_id || !child.parent_step) return;
  // The parent's counters change below: hold its row (lock order child -> parent; a deadlock with a parent
  // cancelling its children is detected by PostgreSQL and the transaction retried).
  const parent = await t.lockRun(child.parent_run_id);
  const [step] = await sql<StepRow>(client, 'step', [child.parent_run_id, child.parent_step]);
  if (!parent || step?.status !== 'running') return;
  const attempt = step.attempts;
  if (status === 'succeeded') {
    const output = { child_run: childId, status, outputs: await leafOutputs(tx, child) };
    await sql(client, 'finishStep', [parent.id, step.name, 'succeeded', pgJson(output), null, now]);
    t.emit(events, parent, 'step.succeeded', step.name, now, { attempt, child_run: childId });
    await t.settle(events, parent, step.name, now);
    tx.wake = true;
    return;
  }
  const error = { code: 'CHILD_RUN_FAILED', message: `child run ${childId} of pipeline ${child.pipeline} ${status}`, retryable: status === 'failed' };
  const failure: AttemptResult = { attemptId: 0, fence: 0, owner: '', outcome: 'failed', error, retryable: error.retryable, processingMs: 0, retryDelayMs: 0 };
  await recordFailure(tx, parent, step.name, attempt, failure, now, events);
  tx.wake = true;
}

/** The outputs of a run's final steps (those nothing else needs), by step name. */
async function leafOutputs(tx: Tx, run: RunRow): Promise<Record<string, unknown>> {
  const { definition, dependents } = await tx.t.pipelineOf(run);
  const out: Record<string, unknown> = {};
  for (const s of definition.steps) {
    if ((dependents.get(s.name) ?? []).length > 0) continue;
    const [row] = await sql<StepRow>(tx.client, 'step', [run.id, s.name]);
    out[s.name] = row?.output ? JSON.parse(row.output) : null;
  }
  return out;
}
