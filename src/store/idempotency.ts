import { SluiceError } from '../core/errors.js';
import { sha256, stableStringify } from '../core/hash.js';
import type { CreateRunRequest } from './store.js';

/** How long an idempotency key names its run: 24 h. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

/**
 * sha256 of what a run request asks for (input, steps, force, priority, run_at, max_parallel), stored with its
 * idempotency key: a later request with the same key must ask for the same thing. Not the pipeline version: a
 * retried request after an edit of the pipeline is still the same request.
 */
export function runRequestHash(req: CreateRunRequest): string {
  return sha256(
    stableStringify({
      input: req.input ?? null,
      steps: req.selection ? [...req.selection].sort() : null,
      force: req.force === true,
      priority: req.priority ?? 0,
      run_at: req.runAt ?? null,
      max_parallel: req.maxParallel ?? null,
    }),
  );
}

/**
 * Refuses (IDEMPOTENCY_CONFLICT, naming the existing run) a request whose idempotency key names a run created by
 * a different request. A run stored without a hash (before migration 9) matches any request.
 */
export function checkSameRequest(existing: { id: string; idempotency_hash?: string | null | undefined }, req: CreateRunRequest, hash: string): void {
  if (existing.idempotency_hash == null || existing.idempotency_hash === hash) return;
  throw new SluiceError(
    'IDEMPOTENCY_CONFLICT',
    `idempotency key "${req.idempotencyKey}" of pipeline ${req.pipeline.name} was used by run ${existing.id} with a different request (input, steps, force, priority, run_at or max_parallel); use a new key or repeat the same request`,
    { details: { run_id: existing.id, idempotency_key: req.idempotencyKey } },
  );
}
