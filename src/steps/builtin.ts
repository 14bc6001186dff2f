import { createApprovalStep } from './approval/approval-step.js';
import { createCodeStep } from './code/code-step.js';
import { createCommandStep } from './command/command-step.js';
import { createFunctionStep, type StepFunction } from './function/function-step.js';
import { createGateStep } from './gate/gate-step.js';
import { createMapStep } from './map/map-step.js';
import { createPipelineStep } from './pipeline/pipeline-step.js';
import { createHttpStep } from './http/http-step.js';
import { createLlmStep, type LlmStepOptions } from './llm/llm-step.js';
import type { StepType } from './step-type.js';
import { createSleepStep } from './sleep/sleep-step.js';
import { createWaitForEventStep } from './wait-for-event/wait-for-event-step.js';

export type { FunctionContext, StepFunction } from './function/function-step.js';
export type { HttpConfig, HttpOutput } from './http/http-step.js';
export type { LlmConfig, LlmStepOptions, LlmTextOutput, ModelPrice } from './llm/llm-step.js';

/** Options of {@link builtinStepTypes}. */
export interface BuiltinStepOptions {
  /** Functions a `function` step can call by `with.name`. Default: none. */
  functions?: Record<string, StepFunction>;
  /** Price table, default base URL and rate limiter of `llm` steps. Default: no prices, env `OPENAI_BASE_URL`. */
  llm?: LlmStepOptions;
}

/** Returns a fresh registry of the built-in step types (`function`, `command`, `code`, `llm`, `http`, `gate`, `approval`, `pipeline`, `map`, `sleep`, `wait_for_event`) keyed by type name. */
export function builtinStepTypes(options: BuiltinStepOptions = {}): Map<string, StepType<any>> {
  const types: StepType<any>[] = [
    createFunctionStep(options.functions),
    createCommandStep(),
    createCodeStep(),
    createLlmStep(options.llm),
    createHttpStep(),
    createGateStep(),
    createApprovalStep(),
    createPipelineStep(),
    createSleepStep(),
    createWaitForEventStep(),
  ];
  const registry = new Map(types.map((stepType) => [stepType.type, stepType]));
  // map runs the other step types of this same registry, once per item.
  registry.set('map', createMapStep(() => registry));
  return registry;
}
