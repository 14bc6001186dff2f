import { describe, expect, it } from 'vitest';
import { decide, DEFAULT_DECISION_RULES, type Failure, type Severity } from '../../src/steps/gate/decide.js';

const fail = (severity: Severity, n = 1): Failure[] => Array.from({ length: n }, (_, i) => ({ kind: 'rule', name: `r${i}`, severity, message: 'x' }));

describe('gate decision rules (defaults from the supervised-jobs design)', () => {
  it('proceeds when nothing failed, or only low and medium checks failed', () => {
    expect(decide([], DEFAULT_DECISION_RULES, true).decision).toBe('proceed');
    expect(decide([...fail('low', 2), ...fail('medium', 2)], DEFAULT_DECISION_RULES, true).decision).toBe('proceed');
  });

  it('blocks on any critical failure, even with a step to retry', () => {
    expect(decide([...fail('critical'), ...fail('high')], DEFAULT_DECISION_RULES, true)).toEqual({ decision: 'block', reason: '1 critical failure(s)' });
  });

  it('blocks on more than 5 failures', () => {
    expect(decide(fail('low', 6), DEFAULT_DECISION_RULES, true).decision).toBe('block');
    expect(decide(fail('low', 5), DEFAULT_DECISION_RULES, true).decision).toBe('proceed');
  });

  it('retries on a high failure, or blocks when there is no step to retry', () => {
    expect(decide(fail('high', 2), DEFAULT_DECISION_RULES, true).decision).toBe('retry');
    expect(decide(fail('high'), DEFAULT_DECISION_RULES, false)).toEqual({ decision: 'block', reason: '1 high failure(s) and no step to retry' });
  });

  it('follows configured rules', () => {
    const lenient = { ...DEFAULT_DECISION_RULES, block_on_critical: false, retry_on_high: false, max_failures: 100 };
    expect(decide([...fail('critical'), ...fail('high')], lenient, true).decision).toBe('proceed');
  });
});
