import type { StepRegistry, StepType } from '../../src/steps/step-type.js';

function fakeType(type: string, configSchema: Record<string, unknown>): StepType {
  return { type, configSchema, execute: async () => null };
}

/** A small registry with simple config schemas, standing in for the real step types. */
export function fakeStepTypes(): StepRegistry {
  const types = [
    fakeType('command', {
      type: 'object',
      required: ['run'],
      additionalProperties: false,
      properties: { run: { type: 'string' }, env: { type: 'object' }, timeout_s: { type: 'number' } },
    }),
    fakeType('function', {
      type: 'object',
      required: ['module', 'export'],
      properties: { module: { type: 'string' }, export: { type: 'string' }, args: { type: 'array' } },
    }),
    fakeType('code', { type: 'object', required: ['code'], properties: { code: { type: 'string' } } }),
    fakeType('llm', { type: 'object', required: ['prompt'], properties: { model: { type: 'string' }, prompt: { type: 'string' } } }),
    fakeType('gate', { type: 'object', properties: { rules: { type: 'array' } } }),
  ];
  return new Map(types.map((t) => [t.type, t]));
}
