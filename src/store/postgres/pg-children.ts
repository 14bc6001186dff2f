import { toStoredPipeline, type PipelineRow, type RunRow } from '../rows.js';
import type { AttemptResult, RunEvent } from '../store.js';
import { recordFailure } from '../ledger/outcomes.js';
import { createRunIn, type Tx } from './pg-attempts.js';
import { sql } from './pg-store-sql.js';
import { pgJson } from './pg-json.js';

/*
 * Child runs of `pipeline` steps on PostgreSQL (ported from the SQLite backend): the step starts its child run in
 * its own transaction and stays running, holding no lease, until the child ends.
 */

/** A `pipeline` step starts its child run in the same transaction; the ledger's endChild completes the step. */
export async function spawnChild(tx: Tx, run: RunRow, step: string, number: number, r: AttemptResult, now: number, events: RunEvent[]): Promise<void> {
  const request = r.spawn!;
  const [child] = await sql<PipelineRow>(tx.client, 'latestPipeline', [request.pipeline]);
  if (!child) {
    const error = { code: 'PIPELINE_NOT_FOUND', message: `step ${step} runs pipeline ${request.pipeline}, which is not registered`, retryable: false };
    await tx.t.run(recordFailure(tx.t, run, step, number, { ...r, outcome: 'failed', error, retryable: false }, now, events));
    return;
  }
  const traced = request.traceparent === undefined ? {} : { traceparent: request.traceparent };
  const created = await createRunIn(tx, { pipeline: toStoredPipeline(child), input: request.input, parent: { runId: run.id, step }, ...traced }, now);
  await sql(tx.client, 'setStepOutput', [run.id, step, pgJson({ child_run: created.run.id })]);
  events.push(...created.events);
  tx.wake = true;
}
