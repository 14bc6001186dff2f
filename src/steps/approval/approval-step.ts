import type { StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface ApprovalConfig {
  /** What the human is asked. */
  message?: string;
  /** Anything the human should see next to the question. */
  details?: unknown;
}

/**
 * `approval`: the run waits, durably and across restarts, until a human approves or rejects this step
 * (`sluice approve|reject RUN STEP`, or the API). Approving makes the step succeed with
 * `{ approved: true, decision, comment, by }`; rejecting fails it.
 */
export function createApprovalStep(): StepType<ApprovalConfig> {
  return {
    type: 'approval',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: { message: { type: 'string' }, details: {} },
    },
    async execute(_ctx, config) {
      return StepDirective.block({ message: config.message ?? 'approval required', ...(config.details === undefined ? {} : { details: config.details }) });
    },
  };
}
