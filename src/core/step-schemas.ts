import type { JsonSchema } from './model.js';

/**
 * What validating a pipeline needs of a step type: its name and the JSON Schema of its `with`. The full plugin
 * contract (`StepType` in steps/step-type.ts) has these members, so a step registry is a {@link StepSchemas}; core
 * names only this much so that it depends on nothing outside core.
 */
export interface StepTypeSchema {
  type: string;
  configSchema: JsonSchema;
}

/** Step types by name, as validation looks them up. */
export type StepSchemas = ReadonlyMap<string, StepTypeSchema>;
