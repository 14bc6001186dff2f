import { SluiceError } from '../../src/core/errors.js';
import type { StepContext, StepType } from '../../src/steps/step-type.js';

export type TestFn = (ctx: StepContext, config: Record<string, unknown>) => unknown;

/**
 * A `function`-like step type for engine tests: `with.fn` names a function registered here, so tests
 * observe executions (counts, overlap, inputs) without loading modules.
 */
export function testSteps(fns: Record<string, TestFn>): Map<string, StepType<any>> {
  const fn: StepType<Record<string, unknown>> = {
    type: 'function',
    configSchema: { type: 'object' },
    async execute(ctx, config) {
      const f = fns[String(config['fn'])];
      if (!f) throw new SluiceError('MODULE_LOAD_FAILED', `no test function ${String(config['fn'])}`, { retryable: false });
      return f(ctx, config);
    },
  };
  const command: StepType<Record<string, unknown>> = { type: 'command', configSchema: { type: 'object' }, execute: async () => ({}) };
  return new Map<string, StepType<any>>([
    ['function', fn],
    ['command', command],
  ]);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });
}
