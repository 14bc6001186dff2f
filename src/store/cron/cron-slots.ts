import { get, run, sql } from '../ledger/effects.js';
import type { FeatureRunner } from '../features/feature-runner.js';

const S = {
  // $1 pipeline $2 trigger $3 slot $4 now: one caller per (pipeline, trigger, slot) inserts the row
  claim: sql('cronClaim', `INSERT INTO cron_slots (pipeline, trigger, slot, claimed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`),
  // $1 pipeline $2 trigger: the latest slot claimed
  last: sql('cronLast', `SELECT MAX(slot) AS slot FROM cron_slots WHERE pipeline = $1 AND trigger = $2`),
};

/** Claims one slot of a cron trigger: true for exactly one caller per (pipeline, trigger, slot). */
export async function claimCronSlot(r: FeatureRunner, pipeline: string, trigger: string, slot: number, now: number): Promise<boolean> {
  return (await r.write(() => run(S.claim, [pipeline, trigger, slot, now]))) === 1;
}

/** The latest claimed slot of the cron trigger; undefined when none. */
export async function lastCronSlot(r: FeatureRunner, pipeline: string, trigger: string): Promise<number | undefined> {
  const slot = (await r.read(() => get<{ slot: number | null }>(S.last, [pipeline, trigger])))?.slot;
  return slot === null || slot === undefined ? undefined : Number(slot);
}
