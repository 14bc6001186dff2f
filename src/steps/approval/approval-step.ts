import { DURATION_HINT, parseDuration } from '../../core/duration.js';
import { SluiceError } from '../../core/errors.js';
import type { StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface ApprovalConfig {
  /** What the human is asked. */
  message?: string;
  /** Anything the human should see next to the question. */
  details?: unknown;
  /** JSON Schema of the reviewer's response (`--response` / `response`), checked when approving; it becomes `output.response`. */
  response?: Record<string, unknown>;
  /** How long the reviewer has. Default: no limit. */
  timeout?: string | number;
  /** What the deadline decides: `reject` (the step fails, REJECTED) or `approve`. Default: reject. */
  on_timeout?: 'approve' | 'reject';
}

/**
 * `approval`: the run waits, durably and across restarts, until a human approves or rejects this step
 * (`sluice approve|reject RUN STEP`, or the API). Approving makes the step succeed with
 * `{ approved: true, decision, comment, by, response }`; rejecting fails it. With `with.response` (a JSON Schema), an
 * approval must carry a response that matches it.
 */
export function createApprovalStep(): StepType<ApprovalConfig> {
  return {
    type: 'approval',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        message: { type: 'string' },
        details: {},
        response: { type: 'object' },
        timeout: { type: ['string', 'number'] },
        on_timeout: { enum: ['approve', 'reject'] },
      },
    },
    async execute(ctx, config) {
      const deadline = config.timeout === undefined ? undefined : ctx.now() + timeoutMs(ctx.step, config.timeout);
      const onTimeout = config.on_timeout ?? 'reject';
      const detail = {
        message: config.message ?? 'approval required',
        ...(config.details === undefined ? {} : { details: config.details }),
        ...(config.response === undefined ? {} : { response_schema: config.response }),
        ...(deadline === undefined ? {} : { deadline: new Date(deadline).toISOString(), on_timeout: onTimeout }),
      };
      if (deadline === undefined) return StepDirective.block(detail);
      // The decision the deadline takes is kept with the wait (its context), where the engine reads it.
      const context = { input: null, steps: {}, on_timeout: onTimeout };
      return StepDirective.block(detail, { kind: 'approval', wakeAt: deadline, context, detail });
    },
  };
}

function timeoutMs(step: string, value: string | number): number {
  try {
    return parseDuration(value);
  } catch {
    throw new SluiceError('VALIDATION_FAILED', `approval ${step}: with.timeout is ${JSON.stringify(value)}; expected ${DURATION_HINT}`, { retryable: false });
  }
}
