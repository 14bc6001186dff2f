import type { Pipeline } from '../core/model.js';

/**
 * The concurrency keys a new run stores, as JSON text (step name -> key), or null when no step of the pipeline
 * has a `concurrency_key`. A keyed step whose rendered key is missing keeps its key's text unrendered: one key
 * shared by every run, which limits more, never less.
 */
export function runConcurrencyKeys(pipeline: Pipeline, rendered: Record<string, string> | undefined): string | null {
  let keys: Record<string, string> | null = null;
  for (const step of pipeline.steps) {
    if (step.concurrencyKey === null) continue;
    keys ??= {};
    keys[step.name] = rendered?.[step.name] ?? step.concurrencyKey;
  }
  return keys === null ? null : JSON.stringify(keys);
}

/** Keyed attempts of one claim that exceed their key's limit: the last ones (by id) of each key beyond `limit - running`. */
export function excessKeyedClaims<T extends { id: number; concurrency_key: string | null }>(rows: readonly T[], runningOf: (key: string) => number, limitOf: (row: T) => number): Set<number> {
  const byKey = new Map<string, T[]>();
  for (const r of rows) if (r.concurrency_key !== null) (byKey.get(r.concurrency_key) ?? byKey.set(r.concurrency_key, []).get(r.concurrency_key)!).push(r);
  const excess = new Set<number>();
  for (const [key, claimed] of byKey) {
    const over = runningOf(key) - limitOf(claimed[0]!);
    if (over <= 0) continue;
    claimed.sort((a, b) => b.id - a.id);
    for (const r of claimed.slice(0, over)) excess.add(r.id);
  }
  return excess;
}
