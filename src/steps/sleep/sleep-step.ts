import { SluiceError } from '../../core/errors.js';
import { DURATION_HINT, parseDuration } from '../../core/duration.js';
import type { StepContext, StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface SleepConfig {
  /** How long to wait from when the step starts: a duration (`10m`, `1h30m`) or milliseconds. */
  for?: string | number;
  /** When to wake: an ISO 8601 time or epoch milliseconds (usually from an expression). */
  until?: string | number;
}

/** What a `sleep` step outputs once its time has come. */
export interface SleepOutput {
  /** The wake time it waited for, ISO 8601. */
  until: string;
  /** When it was run again, ISO 8601 (its time or a little after). */
  woke_at: string;
}

/**
 * `sleep`: the run waits, durably, until a time (`with.until`) or for a while (`with.for`). It holds no worker
 * while it waits: the step is `waiting` and runs again at its time, after restarts and on any worker. Waiting
 * does not count against the step's `timeout`; the run's `timeout` still applies.
 */
export function createSleepStep(): StepType<SleepConfig> {
  return {
    type: 'sleep',
    waits: true,
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: { for: { type: ['string', 'number'] }, until: { type: ['string', 'number'] } },
    },
    async execute(ctx, config) {
      const now = ctx.now();
      const current = ctx.waits?.current;
      const until = current?.wakeAt ?? wakeTime(ctx, config, now);
      if (now >= until) {
        // No write to end the wait: a succeeded step is not run again (a rollback starts a new wait), and the
        // claim that ran this attempt wrote step.woken; one write per sleep halved the wake-ups a worker keeps up with.
        return { until: new Date(until).toISOString(), woke_at: new Date(now).toISOString() } satisfies SleepOutput;
      }
      const detail = { waiting_for: 'time', until: new Date(until).toISOString() };
      return StepDirective.wait({ kind: 'sleep', wakeAt: until, detail, ...(current ? { renew: true } : {}) });
    },
  };
}

/** The wake time `with` asks for, epoch ms; a clear error names the step and the key otherwise. */
function wakeTime(ctx: StepContext, config: SleepConfig, now: number): number {
  const bad = (key: string, why: string) => new SluiceError('VALIDATION_FAILED', `sleep ${ctx.step}: with.${key} ${why}`, { retryable: false });
  if ((config.for === undefined) === (config.until === undefined)) throw bad('for', 'or with.until is required (exactly one of them)');
  if (config.for !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(config.for);
    } catch {
      throw bad('for', `is ${JSON.stringify(config.for)}; expected ${DURATION_HINT}`);
    }
    return now + ms;
  }
  const value = config.until!;
  const at = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Date.parse(value);
  if (!Number.isFinite(at)) throw bad('until', `is ${JSON.stringify(value)}; expected an ISO 8601 time or epoch milliseconds`);
  return at;
}
