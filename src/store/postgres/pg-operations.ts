import type pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import type { StepItem } from '../../core/step-results.js';
import type { AttemptLease } from '../store.js';
import { sql } from './pg-store-sql.js';
import { pgJson } from './pg-json.js';

/**
 * Takes one request (and `tokens` estimated tokens) from the shared per-minute budget of `key`, inside a
 * transaction; returns 0 when granted, else the milliseconds until the budget renews.
 */
export async function takeRateIn(client: pg.ClientBase, key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number> {
  const window = Math.floor(now / 60_000);
  // Workers of every process take from one budget: one taker per key at a time.
  await sql(client, 'xactLock', [`rate:${key}`]);
  const [used = { requests: 0, tokens: 0 }] = await sql<{ requests: number; tokens: number }>(client, 'rateWindow', [key, window]);
  const overRequests = limits.rpm !== undefined && used.requests + 1 > limits.rpm;
  // A request larger than the whole token budget goes alone into an empty window rather than never.
  const overTokens = limits.tpm !== undefined && used.tokens > 0 && used.tokens + tokens > limits.tpm;
  if (overRequests || overTokens) return (window + 1) * 60_000 - now;
  await sql(client, 'takeRate', [key, window, tokens]);
  if (used.requests === 0) await sql(client, 'pruneRates', [window - 5]);
  return 0;
}

export interface StepItemRow {
  idx: number;
  status: StepItem['status'];
  output: string | null;
  error: string | null;
}

export function toStepItem(r: StepItemRow): StepItem {
  return {
    index: r.idx,
    status: r.status,
    ...(r.output === null ? {} : { output: JSON.parse(r.output) as unknown }),
    ...(r.error === null ? {} : { error: JSON.parse(r.error) as StepItem['error'] }),
  };
}

/** Records per-item results inside a transaction; LEASE_LOST unless `lease` still holds the step's attempt. */
export async function saveStepItemsIn(client: pg.ClientBase, lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void> {
  if ((await sql(client, 'holdsLease', [lease.attemptId, lease.fence, lease.owner])).length === 0) {
    throw new SluiceError('LEASE_LOST', `attempt ${lease.attemptId} of step ${step} no longer holds its lease; its item results are not recorded`);
  }
  for (const item of items) {
    const output = item.output === undefined ? null : pgJson(item.output);
    const error = item.error === undefined ? null : pgJson(item.error);
    await sql(client, 'putStepItem', [runId, step, item.index, item.status, output, error, now]);
  }
}
