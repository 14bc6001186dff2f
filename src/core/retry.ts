import type { RetryPolicy } from './model.js';

/**
 * Delay before the try after `failures` failures (1 = after the first failure).
 * Exponential: delay * 2^(failures-1), capped at maxDelay; full jitter picks uniformly in [0, computed].
 */
export function retryDelay(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  const base = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * 2 ** Math.max(0, failures - 1);
  const capped = Math.min(base, policy.maxDelayMs);
  return policy.jitter ? Math.round(capped * random()) : capped;
}

/** Whether another try is allowed after `failures` failures of an error that may or may not be retryable. */
export function shouldRetry(policy: RetryPolicy, failures: number, retryable: boolean): boolean {
  return retryable && failures < policy.attempts;
}
