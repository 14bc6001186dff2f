/** The step cache, written once for both backends: a succeeded step's output under its key, and why a step ran or was cached. */
import type { RunRow } from '../rows.js';
import type { AttemptResult } from '../store.js';
import { run as exec, sql, type Rule } from './effects.js';
import type { LedgerTx } from './ledger-tx.js';

const S = {
  putCache: sql(
    'putCache',
    `INSERT INTO step_cache (pipeline, cache_key, output, run_id, step, created_at, parts, outputs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (pipeline, cache_key) DO UPDATE SET output = EXCLUDED.output, run_id = EXCLUDED.run_id,
       step = EXCLUDED.step, created_at = EXCLUDED.created_at, parts = EXCLUDED.parts, outputs = EXCLUDED.outputs`,
  ),
  setCacheExplain: sql('setCacheExplain', `UPDATE steps SET cache_explain = $3::jsonb WHERE run_id = $1 AND name = $2`),
};

/** Whether {@link recordCache} has anything to write for this result. */
export function writesCache(r: AttemptResult): boolean {
  return (r.outcome === 'succeeded' && r.cacheable === true && !!r.cacheKey) || !!r.cacheExplain;
}

/** Stores a succeeded step's output (`output`: JSON as its column takes it) under its cache key, and why the step ran or was cached. */
export function* recordCache(tx: LedgerTx, run: Pick<RunRow, 'id' | 'pipeline'>, step: string, r: AttemptResult, output: string | null, now: number): Rule<void> {
  if (r.outcome === 'succeeded' && r.cacheable && r.cacheKey) {
    const parts = r.cacheParts ? tx.json(r.cacheParts) : null;
    const outputs = r.cacheOutputs ? tx.json(r.cacheOutputs) : null;
    yield* exec(S.putCache, [run.pipeline, r.cacheKey, output, run.id, step, now, parts, outputs]);
  }
  if (r.cacheExplain) yield* exec(S.setCacheExplain, [run.id, step, tx.json(r.cacheExplain)]);
}
