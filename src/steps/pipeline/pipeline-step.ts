import type { StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';

export interface PipelineStepConfig {
  /** Name of a registered pipeline; its latest version runs. */
  pipeline: string;
  /** Input of the child run. Default: this run's input. */
  input?: unknown;
}

/**
 * `pipeline`: runs another pipeline as a child run (a composite stage). The parent step waits durably,
 * holding no lease, and ends with the child: it succeeds with `{ child_run, status, outputs }` (outputs of
 * the child's final steps) or fails, and is retried per its retry policy with a new child run. Cancelling
 * the parent cancels the child.
 */
export function createPipelineStep(): StepType<PipelineStepConfig> {
  return {
    type: 'pipeline',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['pipeline'],
      properties: { pipeline: { type: 'string', minLength: 1 }, input: {} },
    },
    async execute(ctx, config) {
      const input = config.input === undefined ? ctx.input : config.input;
      return StepDirective.spawn({ pipeline: config.pipeline, input, ...(ctx.traceparent === undefined ? {} : { traceparent: ctx.traceparent }) });
    },
  };
}
