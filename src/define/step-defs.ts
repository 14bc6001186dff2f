import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { SleepConfig, SleepOutput } from '../steps/sleep/sleep-step.js';
import type { WaitForEventConfig } from '../steps/wait-for-event/wait-for-event-step.js';
import type { JsonSchema } from '../core/model.js';
import type { ApprovalConfig } from '../steps/approval/approval-step.js';
import type { CodeConfig } from '../steps/code/code-step.js';
import type { CommandConfig } from '../steps/command/command-step.js';
import type { StepFunction } from '../steps/function/function-step.js';
import type { GateConfig, RuleResult } from '../steps/gate/gate-step.js';
import type { Failure } from '../steps/gate/decide.js';
import type { HttpConfig, HttpOutput } from '../steps/http/http-step.js';
import type { LlmConfig, LlmTextOutput } from '../steps/llm/llm-step.js';
import type { MapConfig } from '../steps/map/map-step.js';
import type { StepDirective, StepType } from '../steps/step-type.js';
import { sha256 } from '../core/hash.js';
import { toJsonSchema, type SchemaOutput } from './schema.js';

/** Marks a {@link StepDef} (a registered symbol, so two copies of the package agree). */
export const STEP_DEF: unique symbol = Symbol.for('sluice.stepDef') as never;
/** Type-only slot holding a step's output type; never set at run time. */
declare const OUTPUT: unique symbol;

/** Where a step written in code puts its inline functions: names are given when it joins a pipeline. */
export interface BoundStep {
  uses: string;
  with: Record<string, unknown>;
  /** Inline functions by the name `with` now refers to. */
  functions: Map<string, StepFunction>;
}

/**
 * A step written in code: a step type (`uses`), its `with`, and, for the type checker only, its output `Out`.
 * Made by the helpers ({@link command}, {@link code}, {@link llm}, {@link http}, {@link gate}, {@link approval},
 * {@link map}, {@link childPipeline}) or by a custom step type's `use` ({@link defineStepType}).
 */
export interface StepDef<Out = unknown> {
  readonly [STEP_DEF]: true;
  readonly uses: string;
  readonly with: Record<string, unknown>;
  /** JSON Schema the output must match, checked by the engine (the `output` key of YAML). */
  readonly output?: JsonSchema;
  /** A pipeline defined in code that this step runs as a child: registered before the pipeline holding the step. */
  readonly child?: object;
  /** Names this step's inline functions after `prefix` (`pipeline.step`); absent when it has none. */
  readonly bind?: (prefix: string) => BoundStep;
  readonly [OUTPUT]?: Out;
}

/** The output type of a {@link StepDef}. */
export type StepDefOutput<D> = D extends StepDef<infer O> ? O : never;

/** A `with` value as written: the value itself or a `${{ expr }}` template evaluated at run time. */
export type Template<T> = T | `${string}\${{${string}}}${string}`;

export function isStepDef(value: unknown): value is StepDef {
  return typeof value === 'object' && value !== null && (value as { [STEP_DEF]?: unknown })[STEP_DEF] === true;
}

/** A {@link StepDef} of step type `uses` with `with` (undefined values left out, as YAML would not have them). */
export function stepDef<Out>(uses: string, config: object, extra: Partial<Pick<StepDef, 'output' | 'bind' | 'child'>> = {}): StepDef<Out> {
  const withValue = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  return { [STEP_DEF]: true, uses, with: withValue, ...extra } as StepDef<Out>;
}

/**
 * A `command` step: a real process (see {@link CommandConfig}). Its output is `{ exit_code, stdout }`; `{ exit_code }`
 * with `output: 'none'`; the last stdout line parsed as JSON with `output: 'json'` (typed `Json`, default `unknown`).
 */
export function command<Json = unknown>(config: CommandConfig & { output: 'json' }): StepDef<Json>;
export function command(config: CommandConfig & { output: 'none' }): StepDef<{ exit_code: number }>;
export function command(config: CommandConfig & { output?: 'text' | undefined }): StepDef<{ exit_code: number; stdout: string }>;
export function command(config: CommandConfig): StepDef<unknown> {
  return stepDef('command', config);
}

/** A `code` step: JavaScript in a sandbox (see {@link CodeConfig}); its output is what the body returns, typed `Out` (default `unknown`). */
export function code<Out = unknown>(config: CodeConfig | string): StepDef<Out> {
  return stepDef('code', typeof config === 'string' ? { code: config } : config);
}

/** `with` of {@link llm}: {@link LlmConfig} whose `schema` may be a Standard Schema, which types the output. */
export type LlmOptions<S> = Omit<LlmConfig, 'schema'> & { schema?: S };

/**
 * An `llm` step: a chat completion (see {@link LlmConfig}). With `schema` (a Standard Schema with a JSON Schema
 * conversion, such as zod 4, or a JSON Schema), the output is the parsed, validated JSON, typed by the schema;
 * without it, `{ text }`.
 */
export function llm<const S extends StandardSchemaV1 | JsonSchema | undefined = undefined>(config: LlmOptions<S>): StepDef<S extends undefined ? LlmTextOutput : SchemaOutput<S>> {
  const { schema, ...rest } = config;
  if (schema === undefined) return stepDef('llm', rest);
  const json = toJsonSchema(schema);
  if (json === null) throw new TypeError('llm: this schema library gives no JSON Schema (Standard JSON Schema); pass a JSON Schema or a zod 4 schema');
  return stepDef('llm', { ...rest, schema: json });
}

/** An `http` step: a templated request (see {@link HttpConfig}); output `{ status, headers, body }`, `body` typed `Body`. */
export function http<Body = unknown>(config: HttpConfig): StepDef<Omit<HttpOutput, 'body'> & { body: Body }> {
  return stepDef('http', config);
}

/** What a `gate` step outputs when it lets the run proceed (or after a person approved it). */
export interface GateOutput {
  decision: { decision: 'proceed' | 'retry' | 'block'; validations: Failure[]; rules: RuleResult[]; reason: string; retryStep?: string };
  failures: Failure[];
  checked: number;
  approved?: true;
  human?: HumanVerdictOutput;
}

/** A person's decision as a blocked step's output keeps it. */
export interface HumanVerdictOutput {
  decision: 'approved' | 'rejected';
  comment?: string;
  by?: string;
  /** Epoch milliseconds. */
  at: number;
}

/** `with` of {@link gate}: {@link GateConfig} whose `schema` may be a Standard Schema. */
export type GateOptions = Omit<GateConfig, 'schema'> & { schema?: StandardSchemaV1 | JsonSchema };

/** A `gate` step: checks upstream outputs by schema and rules, then proceeds, rewinds a step or blocks (see {@link GateConfig}). */
export function gate(config: GateOptions): StepDef<GateOutput> {
  const { schema, ...rest } = config;
  if (schema === undefined) return stepDef('gate', rest);
  const json = toJsonSchema(schema);
  if (json === null) throw new TypeError('gate: this schema library gives no JSON Schema (Standard JSON Schema); pass a JSON Schema or a zod 4 schema');
  return stepDef('gate', { ...rest, schema: json });
}

/** What an `approval` step outputs once approved. */
export interface ApprovalOutput {
  message: string;
  details?: unknown;
  approved: true;
  human: HumanVerdictOutput;
}

/** An `approval` step: the run waits until a person approves (the step succeeds) or rejects (it fails). */
export function approval(config: ApprovalConfig = {}): StepDef<ApprovalOutput> {
  return stepDef('approval', config);
}

/** A `sleep` step: the run waits, holding no worker, for `for` or until `until` (see {@link SleepConfig}). */
export function sleep(config: SleepConfig): StepDef<SleepOutput> {
  return stepDef('sleep', config);
}

/**
 * A `wait_for_event` step: the run waits, holding no worker, for an event matching `match` (see
 * {@link WaitForEventConfig}); the output is the event's payload, typed `Payload` (null after a timeout with
 * `on_timeout: continue`).
 */
export function waitForEvent<Payload = unknown>(config: WaitForEventConfig): StepDef<Payload> {
  return stepDef('wait_for_event', config);
}

/** What a `pipeline` step outputs: the child run and the outputs of its final steps. */
export interface ChildRunOutput<Outputs> {
  child_run: string;
  status: 'succeeded';
  outputs: Outputs;
}

/** A pipeline defined in code, as far as a `pipeline` step needs to know it. */
export interface ChildPipelineRef<I = unknown, Finals = unknown> {
  readonly name: string;
  /** Type only. */
  readonly types?: { runInput: I; finals: Finals };
}

/**
 * A `pipeline` step: runs `child` (a pipeline defined in code, or a registered pipeline's name) as a child run,
 * with `input` (default: this run's input). The output is typed by the child's final steps. A child defined in
 * code is registered with its parent (by `engine.run` and `--load`).
 */
export function childPipeline<P extends ChildPipelineRef | string>(
  child: P,
  options: { input?: P extends ChildPipelineRef<infer I> ? Template<I> : unknown } = {},
): StepDef<ChildRunOutput<P extends ChildPipelineRef<unknown, infer F> ? F : Record<string, unknown>>> {
  return stepDef('pipeline', { pipeline: typeof child === 'string' ? child : child.name, input: options.input }, typeof child === 'string' ? {} : { child });
}

/** What a `map` step outputs: per item its output (null when it failed), the failures and how many succeeded. */
export interface MapResult<Out> {
  items: Array<Out | null>;
  failed: Array<{ index: number; error: { code: string; message: string } }>;
  succeeded: number;
}

/** What an inline function run per item of {@link map} receives. */
export type MapItemFunction<Item, Out> = (item: Item, index: number, ctx: Parameters<StepFunction>[0]) => Out | Promise<Out>;

/** `with` of {@link map}: the items, and the step run per item (a step helper, or an inline function of the item). */
export interface MapOptions<Item, Out> extends Omit<MapConfig, 'items' | 'step'> {
  /** The list, or a `${{ }}` expression giving it. */
  items: Template<Item[]>;
  /** Run per item: a function of the item, or a step whose `with` uses `${{ item }}` and `${{ index }}`. */
  step: MapItemFunction<Item, Out> | StepDef<Out>;
}

/**
 * A `map` step: fans out over `items` in checkpointed batches. `step` is a function of each item (typed `Item`,
 * give it when `items` is an expression: `map<User>(...)`) or a step helper; the output is {@link MapResult}.
 */
export function map<Item = unknown, Out = unknown>(config: MapOptions<Item, Awaited<Out>> | MapOptions<Item, Out>): StepDef<MapResult<Awaited<Out>>> {
  const { step, ...rest } = config;
  if (typeof step !== 'function') {
    if (step.bind) throw new TypeError('map: the step run per item cannot itself hold inline functions');
    return stepDef('map', { ...rest, step: { uses: step.uses, with: step.with } });
  }
  const perItem = step as MapItemFunction<Item, unknown>;
  const bind = (prefix: string): BoundStep => {
    const fn: StepFunction = (ctx) => {
      const { item, index } = ctx.args as { item: Item; index: number };
      return perItem(item, index, ctx);
    };
    const name = functionName(`${prefix}.item`, perItem);
    return { uses: 'map', with: { ...rest, step: { uses: 'function', with: { name, args: { item: '${{ item }}', index: '${{ index }}' } } } }, functions: new Map([[name, withSource(fn, perItem)]]) };
  };
  return stepDef('map', { ...rest, step: { uses: 'function', with: {} } }, { bind });
}

/**
 * A custom step type, typed end to end: `Config` is its `with`, `Out` its output. Register it on the engine
 * (`builtinStepTypes()` returns a Map: `.set(type.type, type)`) and use it in pipelines with `type.use(config)`.
 */
export interface CustomStepType<Config, Out> extends StepType<Config> {
  /** A step of this type with `with` = `config`. */
  use(config: Config): StepDef<Exclude<Out, StepDirective>>;
}

/**
 * Defines a custom step type: `execute(ctx, config)` returns the output (or a {@link StepDirective}); `configSchema`
 * (a JSON Schema, default: any object) checks `with` when a pipeline is registered.
 */
export function defineStepType<Config extends object, Out>(definition: Omit<StepType<Config>, 'execute' | 'configSchema'> & {
  configSchema?: JsonSchema;
  execute(ctx: Parameters<StepType<Config>['execute']>[0], config: Config): Promise<Out>;
}): CustomStepType<Config, Out> {
  const type: StepType<Config> = { ...definition, configSchema: definition.configSchema ?? { type: 'object' } };
  return { ...type, use: (config: Config) => stepDef<Exclude<Out, StepDirective>>(type.type, config) };
}

/** The name an inline function is registered under: its place and a hash of its source (new source, new name, new version). */
export function functionName(prefix: string, fn: (...args: never[]) => unknown): string {
  return `${prefix}@${sourceDigest(fn)}`;
}

function sourceDigest(fn: (...args: never[]) => unknown): string {
  return sha256(fn.toString()).slice(0, 12);
}

/** `wrapper` reporting `original`'s source, so the step cache keys on the code the user wrote. */
export function withSource(wrapper: StepFunction, original: (...args: never[]) => unknown): StepFunction {
  const source = original.toString();
  wrapper.toString = () => source;
  return wrapper;
}
