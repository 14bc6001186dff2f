import type { StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface ApprovalConfig {
  /** What the human is asked. */
  message?: string;
  /** Anything the human should see next to the question. */
  details?: unknown;
  /** JSON Schema of the reviewer's response (`--response` / `response`), checked when approving; it becomes `output.response`. */
  response?: Record<string, unknown>;
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
      properties: { message: { type: 'string' }, details: {}, response: { type: 'object' } },
    },
    async execute(_ctx, config) {
      return StepDirective.block({
        message: config.message ?? 'approval required',
        ...(config.details === undefined ? {} : { details: config.details }),
        ...(config.response === undefined ? {} : { response_schema: config.response }),
      });
    },
  };
}
