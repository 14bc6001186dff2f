import { describe, expect, it } from 'vitest';
import { afterFailure, afterRewindRequest, renderWith, startVerdict } from '../../src/core/step-policy.js';
import type { RetryPolicy } from '../../src/core/model.js';

const retry = (attempts: number): RetryPolicy => ({ attempts, backoff: 'fixed', delayMs: 100, maxDelayMs: 1000, jitter: false });

describe('the step policy', () => {
  it('retries while the policy allows, then continues or aborts per on_failure and fail_fast', () => {
    const step = { retry: retry(3), onFailure: 'abort' as const };
    expect(afterFailure({ step, failFast: true, failures: 1, retryable: undefined })).toEqual({ kind: 'retry', delayMs: 100 });
    // A Retry-After longer than the backoff wins.
    expect(afterFailure({ step, failFast: true, failures: 2, retryable: true, retryAfterMs: 700 })).toEqual({ kind: 'retry', delayMs: 700 });
    expect(afterFailure({ step, failFast: true, failures: 3, retryable: true })).toEqual({ kind: 'abort', cancel: 'all' });
    expect(afterFailure({ step, failFast: false, failures: 1, retryable: false })).toEqual({ kind: 'abort', cancel: 'downstream' });
    expect(afterFailure({ step, failFast: true, failures: 1, retryable: true, live: false })).toEqual({ kind: 'abort', cancel: 'all' });
    expect(afterFailure({ step: { ...step, onFailure: 'continue' }, failFast: true, failures: 3, retryable: true })).toEqual({ kind: 'continue' });
  });

  it('keeps a retry delay the executor already drew, so the run store waits what the attempt reported', () => {
    const step = { retry: { ...retry(3), jitter: true }, onFailure: 'abort' as const };
    // The executor drew 37 ms with its jitter source; the store decides again and must not draw another delay.
    expect(afterFailure({ step, failFast: true, failures: 1, retryable: true, delayMs: 37, random: () => 0.9 })).toEqual({ kind: 'retry', delayMs: 37 });
    expect(afterFailure({ step, failFast: true, failures: 3, retryable: true, delayMs: 37 })).toEqual({ kind: 'abort', cancel: 'all' });
  });

  it('rewinds a gate within its budget, then blocks or fails with GATE_FAILED', () => {
    expect(afterRewindRequest('check', { budget: 2, then: 'fail' }, 0)).toEqual({ kind: 'rewind', budgetLeft: 1 });
    expect(afterRewindRequest('check', { budget: 2, then: 'block' }, 2)).toEqual({ kind: 'block', reason: 'retry budget of 2 spent' });
    expect(afterRewindRequest('check', { budget: 2, then: 'fail' }, 2)).toEqual({
      kind: 'fail',
      reason: 'retry budget of 2 spent',
      error: { code: 'GATE_FAILED', message: 'gate check: retry budget of 2 spent', retryable: false },
    });
  });

  it('renders with but leaves the raw keys as written', async () => {
    const ctx = { input: { n: 2 }, steps: {}, run: { id: 'r', attempt: 1, pipeline: 'p', version: 1 }, secrets: {} };
    const written = { items: '${{ input.n }}', step: { uses: 'function', with: { args: '${{ item }}' } } };
    expect(await renderWith(written, ctx, { rawKeys: ['step'] })).toEqual({ items: 2, step: written.step });
  });

  it('cancels, waits or starts a step by its needs', () => {
    const need = (status: 'succeeded' | 'failed' | 'blocked' | 'cancelled', onFailure: 'abort' | 'continue' = 'abort') => ({ status, onFailure });
    expect(startVerdict({ needs: [need('succeeded'), need('failed', 'continue')], failFast: true, runFailed: false })).toBe('start');
    expect(startVerdict({ needs: [need('failed')], failFast: false, runFailed: true })).toBe('cancel');
    expect(startVerdict({ needs: [need('succeeded')], failFast: true, runFailed: true })).toBe('cancel');
    expect(startVerdict({ needs: [need('succeeded')], failFast: false, runFailed: true })).toBe('start');
    expect(startVerdict({ needs: [need('blocked')], failFast: true, runFailed: false })).toBe('wait');
  });
});
