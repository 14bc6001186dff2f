/**
 * Typed pipelines in TypeScript code: `pipeline()` and the step helpers. They normalize to the same definition
 * as YAML (validation, graph, versions, cache), with inline functions registered as `function` steps.
 */
export { pipeline, isTypedPipeline } from './pipeline-builder.js';
export type {
  TypedPipeline,
  PipelineOptions,
  StepOptions,
  StepContextOf,
  InlineStep,
  PipelineInput,
  PipelineOutput,
  PipelineSteps,
  RunOutput,
  FinalsOf,
  DefaultOutput,
} from './pipeline-builder.js';
export { command, code, llm, http, gate, approval, map, childPipeline, defineStepType, isStepDef } from './step-defs.js';
export { sleep, waitForEvent } from './step-defs.js';
export type { SleepConfig, SleepOutput } from '../steps/sleep/sleep-step.js';
export type { WaitForEventConfig } from '../steps/wait-for-event/wait-for-event-step.js';
export type {
  StepDef,
  StepDefOutput,
  Template,
  LlmOptions,
  GateOptions,
  GateOutput,
  ApprovalOutput,
  HumanVerdictOutput,
  ChildRunOutput,
  MapOptions,
  MapResult,
  MapItemFunction,
  CustomStepType,
} from './step-defs.js';
export { toJsonSchema, isStandardSchema, type SchemaLike, type SchemaInput, type SchemaOutput } from './schema.js';
export { runTypedPipeline, type RunPipelineOptions } from './run-pipeline.js';
export { loadPipelineModule, parseModuleRef, pickPipeline } from './load-pipelines.js';
export { createFunctionStep, type StepFunction, type FunctionContext, type FunctionConfig } from '../steps/function/function-step.js';
export { StepDirective, type SpawnRequest, type RewindRequest, type StepCacheInputs, type CacheInputsContext, type StepUsage } from '../steps/step-type.js';
export type { BuiltinStepOptions } from '../steps/builtin.js';
export type { CommandConfig, CommandOutputMode } from '../steps/command/command-step.js';
export type { CodeConfig } from '../steps/code/code-step.js';
export type { HttpConfig, HttpOutput } from '../steps/http/http-step.js';
export type { LlmConfig, LlmTextOutput, LlmStepOptions } from '../steps/llm/llm-step.js';
export type { GateConfig, GateRule, RuleResult } from '../steps/gate/gate-step.js';
export type { ApprovalConfig } from '../steps/approval/approval-step.js';
export type { MapConfig, MapOutput } from '../steps/map/map-step.js';
export type { PipelineStepConfig } from '../steps/pipeline/pipeline-step.js';
