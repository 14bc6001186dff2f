import { createCommandStep } from './command/command-step.js';
import { createFunctionStep, type StepFunction } from './function/function-step.js';
import type { StepType } from './step-type.js';

export type { FunctionContext, StepFunction } from './function/function-step.js';

/** Options of {@link builtinStepTypes}. */
export interface BuiltinStepOptions {
  /** Functions a `function` step can call by `with.name`. Default: none. */
  functions?: Record<string, StepFunction>;
}

/** Returns a fresh registry of the built-in step types (`function`, `command`) keyed by type name. */
export function builtinStepTypes(options: BuiltinStepOptions = {}): Map<string, StepType<any>> {
  const types: StepType<any>[] = [createFunctionStep(options.functions), createCommandStep()];
  return new Map(types.map((stepType) => [stepType.type, stepType]));
}
