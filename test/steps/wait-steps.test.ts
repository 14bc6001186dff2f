import { describe, expect, it } from 'vitest';
import { simulatePipeline } from '../../src/engine/simulate.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { createSleepStep } from '../../src/steps/sleep/sleep-step.js';
import { createWaitForEventStep } from '../../src/steps/wait-for-event/wait-for-event-step.js';
import type { StepContext } from '../../src/steps/step-type.js';

const T0 = Date.parse('2026-03-01T09:00:00Z');
const ctx = { step: 'nap', now: () => T0, input: {}, steps: {} } as unknown as StepContext;

describe('bad input to waiting steps names the step and the field', () => {
  it.each([
    [{ until: 'tomorrow' }, 'sleep nap: with.until is "tomorrow"; expected an ISO 8601 time or epoch milliseconds'],
    [{ for: '10 minutes' }, 'sleep nap: with.for is "10 minutes"'],
    [{}, 'sleep nap: with.for or with.until is required'],
    [{ for: '1m', until: T0 }, 'sleep nap: with.for or with.until is required (exactly one of them)'],
  ])('sleep %j', async (config, message) => {
    await expect(createSleepStep().execute(ctx, config as never)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) });
  });

  it.each([
    [{ event: 'e', match: 'event.a = ' }, 'wait_for_event nap: with.match is not a valid expression'],
    [{ event: 'e', timeout: 'soon' }, 'wait_for_event nap: with.timeout is "soon"'],
    [{ event: 'e', lookback: -1 }, 'wait_for_event nap: with.lookback is -1'],
  ])('wait_for_event %j', async (config, message) => {
    await expect(createWaitForEventStep().execute(ctx, config as never)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) });
  });
});

describe('simulate', () => {
  it('completes a sleep at once and reports a wait_for_event as waiting, holding back what needs it', async () => {
    const steps = builtinStepTypes();
    const p = normalizePipeline(
      {
        name: 'sim',
        steps: {
          nap: { uses: 'sleep', with: { for: '1h' } },
          paid: { uses: 'wait_for_event', needs: ['nap'], with: { event: 'order.paid' } },
          after: { uses: 'sleep', needs: ['paid'], with: { for: '1s' } },
        },
      },
      { stepTypes: steps },
    );
    const [result] = await simulatePipeline(p, [null], { steps, now: () => T0 } as never);
    expect(result!.steps['nap']).toMatchObject({ status: 'succeeded', output: { until: '2026-03-01T10:00:00.000Z' } });
    expect(result!.status).toBe('waiting');
    expect(result!.steps['paid']?.status).toBe('waiting');
    expect(result!.steps['after']?.status).toBe('pending');
  });
});
