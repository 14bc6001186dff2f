import type { FlowOutcome } from '../store/flow/flow-start.js';
import type { FlowPort } from '../store/flow/flow-port.js';

/**
 * `flow` of a start's answer: what the pipeline's flow rules did to it (snake_case), or nothing when it has no
 * rules. `delayed_by` names the rule that set a later `run_at`; `absorbed` counts the requests a debounced run
 * stands for; `skipped` says a singleton answered its active run; `after_run_id` is the run a queued singleton
 * waits for.
 */
export function flowView(flow: FlowOutcome | undefined): { flow?: Record<string, unknown> } {
  if (!flow) return {};
  const view: Record<string, unknown> = {};
  if (flow.delayedBy !== undefined) view.delayed_by = flow.delayedBy;
  if (flow.absorbed !== undefined) view.absorbed = flow.absorbed;
  if (flow.skipped !== undefined) view.skipped = flow.skipped;
  if (flow.after !== undefined) view.after_run_id = flow.after;
  if (flow.cancels !== undefined) view.cancelled_run_id = flow.cancels;
  return { flow: view };
}

/** JSON Schema of {@link flowView}, for the OpenAPI document. */
export const flowViewSchema = {
  type: 'object',
  description: "What the pipeline's flow rules (rate_limit, throttle, debounce, singleton) did to this start; absent when it has none.",
  properties: {
    delayed_by: { type: 'string', enum: ['rate_limit', 'throttle', 'debounce', 'singleton'], description: 'The rule that gave the run a later run_at.' },
    absorbed: { type: 'integer', description: 'debounce: the start requests this run stands for, this one included.' },
    skipped: { type: 'boolean', description: 'singleton skip: nothing started; the run is the active one.' },
    after_run_id: { type: 'string', description: 'singleton queue: the run this one starts after.' },
    cancelled_run_id: { type: 'string', description: 'singleton cancel_running: the run this start cancelled.' },
  },
} as const;

/** `flow` of a run read back: the requests a debounced run absorbed, the run a queued singleton waits for. */
export async function storedFlowView(store: FlowPort, runId: string): Promise<{ flow?: Record<string, unknown> }> {
  const flow = await store.runFlow(runId);
  if (!flow) return {};
  return { flow: { absorbed: flow.absorbed, after_run_id: flow.afterRunId } };
}

/** JSON Schema of {@link storedFlowView}. */
export const storedFlowSchema = {
  type: 'object',
  description: 'What flow rules did to the run; absent when none did.',
  properties: {
    absorbed: { type: ['integer', 'null'], description: 'debounce: the start requests this run stands for; null when not debounced.' },
    after_run_id: { type: ['string', 'null'], description: 'singleton queue: the run this one waits for; null once released.' },
  },
} as const;
