import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SluiceError } from '../core/errors.js';
import { yamlPackage } from '../core/lazy-packages.js';
import type { CacheSpec, JsonSchema, Pipeline, PipelineSpec, RetrySpec, StepSpec } from '../core/model.js';
import { normalizePipeline } from '../core/validate.js';
import { registerCodeFunction } from '../steps/function/code-functions.js';
import type { FunctionContext, StepFunction } from '../steps/function/function-step.js';
import type { StepRegistry } from '../steps/step-type.js';
import { isStandardSchema, toJsonSchema, validateStandard, type SchemaInput, type SchemaLike, type SchemaOutput } from './schema.js';
import { childPipeline, functionName, isStepDef, withSource, type ChildRunOutput, type StepDef } from './step-defs.js';

/** Marks a {@link TypedPipeline} (a registered symbol, so two copies of the package agree). */
const TYPED_PIPELINE = Symbol.for('sluice.typedPipeline');

/**
 * Options of a step written in code: the keys of a YAML step besides `uses` and `with`, with `needs` limited to
 * the steps defined before it (a misspelled name does not compile).
 */
export interface StepOptions<Needs extends readonly string[] = readonly string[], Output = undefined, If extends string | undefined = string, OnFailure extends 'abort' | 'continue' = 'abort' | 'continue', Disabled extends boolean = boolean> {
  /** Steps that must succeed first; their outputs are `steps.<name>`. Default: none. */
  needs?: Needs;
  /** JSONata condition over `input`, `steps`, `run`; the step is skipped (output null) when falsy. Default: none. */
  if?: If;
  /** Default: one try (the pipeline's `defaults.retry` when set). */
  retry?: RetrySpec;
  /** Per attempt: milliseconds or a duration such as `30s`. Default: none. */
  timeout?: string | number;
  /** `continue`: a failure leaves this step's output null and the run goes on. Default: `abort`. */
  on_failure?: OnFailure;
  /** The step cache, or what its key covers beyond the step's settings. Default: true. */
  cache?: boolean | CacheSpec;
  /** Default: false. */
  disabled?: Disabled;
  /** Higher runs first. Default: 0. */
  priority?: number;
  /** `${{ expr }}` over `input` and `run`: attempts with one rendered key run at most `concurrency_limit` at once. */
  concurrency_key?: string;
  /** Default: 1 (with `concurrency_key`). */
  concurrency_limit?: number;
  /**
   * Schema of the output, checked at run time (`OUTPUT_INVALID` when it does not match): a Standard Schema (which
   * then types the output) or a JSON Schema. Default: none.
   */
  output?: Output;
}

/** Options of {@link pipeline}: the pipeline-level keys of YAML; `input` may be a Standard Schema. */
export interface PipelineOptions<Input = SchemaLike> {
  description?: string;
  /** Schema of the run input, checked when a run starts. Default: none. */
  input?: Input;
  /** Steps of one run at once. Default: 4. */
  max_parallel?: number;
  /** Default: true. */
  fail_fast?: boolean;
  /** Whole-run timeout: milliseconds or a duration. Default: none. */
  timeout?: string | number;
  disabled?: boolean;
  defaults?: PipelineSpec['defaults'];
  triggers?: PipelineSpec['triggers'];
  /**
   * At most `limit` runs start per `period` (per rendered `key`, e.g. `'${{ input.customer }}'`); over it a start
   * throws RATE_LIMITED (`mode: 'refuse'`, the default) or is delayed to the next window with room (`'queue'`).
   */
  rate_limit?: PipelineSpec['rate_limit'];
  /** Starts are spaced evenly, one every `period / limit` (per `key`); a run over it is delayed, never dropped. */
  throttle?: PipelineSpec['throttle'];
  /** A burst becomes one run with the last input, starting `period` after the last start or `max_wait` after the first. */
  debounce?: PipelineSpec['debounce'];
  /** At most one active run per `key`: `skip` answers it, `queue` starts after it, `cancel_running` cancels it. */
  singleton?: PipelineSpec['singleton'];
}

/** What an inline step function receives: the step context with `input` and `steps` typed. */
export type StepContextOf<Input, Steps> = Omit<FunctionContext, 'input' | 'steps' | 'args'> & {
  /** The run input, typed by the pipeline's input schema or type. */
  input: Input;
  /** Outputs of the steps named in `needs`. */
  steps: Steps;
};

/** An inline step function. */
export type InlineStep<Input, Steps, Out> = (ctx: StepContextOf<Input, Steps>) => Out | Promise<Out>;

/** The default output of a run: the outputs of its final steps (those no other step needs), by name. */
export declare const FINAL_OUTPUTS: unique symbol;
export type DefaultOutput = typeof FINAL_OUTPUTS;

/** `S` with step `K` of output `O`, flattened so editors show `{ fetch: ...; score: number }`. */
type AddStep<S, K extends string, O> = Flatten<{ [P in keyof S | K]: P extends K ? O : P extends keyof S ? S[P] : never }>;
type Flatten<T> = T extends infer U ? { [P in keyof U]: U[P] } : never;
/** No steps (yet). */
type NoSteps = Record<never, never>;
/** `K` when no step has that name yet; a duplicate makes the argument `never`, a compile error. */
type NewName<K extends string, S> = K extends keyof S ? never : K;
type Names<S> = keyof S & string;
type Needed<N extends readonly string[]> = N[number];
/** A step that may be skipped (`if`, `disabled`) or fail without failing the run (`on_failure: continue`) may output null. */
type MaybeNull<O, C, OF, DIS> = [C] extends [string] ? O | null : [OF] extends ['continue'] ? O | null : [DIS] extends [true] ? O | null : O;
type Cond = string | undefined;
type OnFail = 'abort' | 'continue';

/** The outputs of the final steps `F` of a pipeline whose step outputs are `S`. */
export type FinalsOf<S, F extends string> = Flatten<{ [K in F & keyof S]: S[K] }>;

/** What {@link Engine.run} resolves to for a pipeline: the declared `output`, else its final steps' outputs by name. */
export type RunOutput<R, S, F extends string> = [R] extends [DefaultOutput] ? FinalsOf<S, F> : R;

/**
 * A pipeline defined in TypeScript: typed input `I`, step outputs `S` by name, final steps `F`, run output `R`.
 * Every `.step()` returns a new pipeline with one more step; register and run it with
 * `engine.run(p, input)` or serve it with `sluice serve --load FILE`.
 */
export interface TypedPipeline<I = unknown, S = NoSteps, F extends string = never, R = DefaultOutput, In = I> {
  readonly name: string;
  /** Type only: what the pipeline takes and gives. */
  readonly types?: { input: I; runInput: In; steps: S; finals: FinalsOf<S, F>; output: RunOutput<R, S, F> };

  /** Adds a step running `fn` with no upstream steps. */
  step<const K extends string, O>(name: NewName<K, S>, fn: InlineStep<I, NoSteps, O>): TypedPipeline<I, AddStep<S, K, Awaited<O>>, F | K, R, In>;
  /** Adds a step running `fn` whose output is checked (and typed) by `options.output`. */
  step<const K extends string, OS extends StandardSchemaV1, const N extends readonly Names<S>[] = [], const C extends Cond = undefined, const OF extends OnFail = 'abort', const DIS extends boolean = false>(
    name: NewName<K, S>,
    options: StepOptions<N, OS, C, OF, DIS> & { output: OS },
    fn: InlineStep<I, Pick<S, Needed<N>>, SchemaInput<OS>>,
  ): TypedPipeline<I, AddStep<S, K, MaybeNull<SchemaOutput<OS>, C, OF, DIS>>, Exclude<F, Needed<N>> | K, R, In>;
  /** Adds a step running `fn` after the steps in `options.needs`; `ctx.steps` holds their outputs. */
  step<const K extends string, O, const N extends readonly Names<S>[] = [], const C extends Cond = undefined, const OF extends OnFail = 'abort', const DIS extends boolean = false>(
    name: NewName<K, S>,
    options: StepOptions<N, JsonSchema, C, OF, DIS>,
    fn: InlineStep<I, Pick<S, Needed<N>>, O>,
  ): TypedPipeline<I, AddStep<S, K, MaybeNull<Awaited<O>, C, OF, DIS>>, Exclude<F, Needed<N>> | K, R, In>;
  /** Adds a step of a built-in or custom step type (`command(...)`, `llm(...)`...), or runs another typed pipeline as a child run. */
  step<const K extends string, D extends StepDef | TypedPipeline<any, any, any, any, any>, const N extends readonly Names<S>[] = [], OS = undefined, const C extends Cond = undefined, const OF extends OnFail = 'abort', const DIS extends boolean = false>(
    name: NewName<K, S>,
    def: D,
    options?: StepOptions<N, OS, C, OF, DIS>,
  ): TypedPipeline<I, AddStep<S, K, MaybeNull<OS extends StandardSchemaV1 ? SchemaOutput<OS> : DefOutput<D>, C, OF, DIS>>, Exclude<F, Needed<N>> | K, R, In>;

  /** Declares what `engine.run` returns, computed from the step outputs and input once the run succeeded. */
  output<R2>(fn: (result: { steps: S; input: I }) => R2): TypedPipeline<I, S, F, R2, In>;

  /** The same pipeline as YAML would write it (`uses: function` steps name the registered inline functions). */
  toSpec(): PipelineSpec;
  /** {@link toSpec} as YAML text. */
  toYaml(): string;
  /** Normalizes the pipeline as a YAML one is: the same validation (errors name pipeline, step and key) and version. */
  normalize(stepTypes: StepRegistry): Pipeline;
  /** Checks a run input against the input schema; returns it with the schema's defaults and transforms applied. */
  parseInput(input: In): Promise<I>;
  /** The child pipelines defined in code that its `pipeline` steps run, children of children first, each once. */
  children(): Array<TypedPipeline<any, any, any, any, any>>;
  /** The run output from the outputs of all steps. */
  resolveOutput(steps: Record<string, unknown>, input: unknown): RunOutput<R, S, F>;
}

type DefOutput<D> = D extends StepDef<infer O> ? O : D extends TypedPipeline<any, any, any, any, any> ? ChildRunOutput<NonNullable<D['types']>['finals']> : never;

/** The input type of a typed pipeline. */
export type PipelineInput<P> = P extends { types?: { runInput: infer In } } ? In : never;
/** What `engine.run(p, ...)` resolves to. */
export type PipelineOutput<P> = P extends { types?: { output: infer O } } ? O : never;
/** The step outputs of a typed pipeline, by name. */
export type PipelineSteps<P> = P extends TypedPipeline<any, infer S, any, any> ? S : never;

interface StepEntry {
  name: string;
  spec: StepSpec;
  functions: Map<string, StepFunction>;
  /** The child pipeline defined in code that a `pipeline` step runs. */
  child?: TypedPipeline<any, any, any, any, any>;
}

interface State {
  name: string;
  options: PipelineOptions;
  steps: StepEntry[];
  output: ((result: { steps: Record<string, unknown>; input: unknown }) => unknown) | null;
}

/**
 * Starts a pipeline defined in TypeScript. `options.input` is a Standard Schema (zod 4, valibot, arktype...)
 * that types and checks the run input, or a JSON Schema; without a schema, give the input type:
 * `pipeline<{ id: string }>('users')`.
 *
 * ```ts
 * const users = pipeline('users', { input: z.object({ team: z.string() }) })
 *   .step('fetch', async ({ input }) => ({ users: await listUsers(input.team) }))
 *   .step('score', { needs: ['fetch'] }, async ({ steps }) => steps.fetch.users.length);
 * const { score } = await engine.run(users, { team: 'core' }); // number
 * ```
 */
export function pipeline<const S extends StandardSchemaV1>(name: string, options: PipelineOptions<S> & { input: S }): TypedPipeline<SchemaOutput<S>, NoSteps, never, DefaultOutput, SchemaInput<S>>;
export function pipeline<I = unknown>(name: string, options?: PipelineOptions<JsonSchema>): TypedPipeline<I>;
export function pipeline(name: string, options: PipelineOptions = {}): TypedPipeline<unknown> {
  if (typeof name !== 'string' || name.length === 0) throw new SluiceError('VALIDATION_FAILED', 'pipeline(): the name must be a non-empty string');
  return create({ name, options, steps: [], output: null });
}

/** Whether `value` is a pipeline defined with {@link pipeline}. */
export function isTypedPipeline(value: unknown): value is TypedPipeline<any, any, any, any, any> {
  return typeof value === 'object' && value !== null && (value as { [TYPED_PIPELINE]?: unknown })[TYPED_PIPELINE] === true;
}

function create(state: State): TypedPipeline<any, any, any, any, any> {
  const self = {
    [TYPED_PIPELINE]: true,
    name: state.name,
    step: (name: string, second: unknown, third?: unknown) => create({ ...state, steps: [...state.steps, makeStep(state, name, second, third)] }),
    output: (fn: State['output']) => create({ ...state, output: fn }),
    toSpec: () => toSpec(state),
    toYaml: () => yamlPackage().stringify(toSpec(state)),
    normalize: (stepTypes: StepRegistry) => normalizePipeline(toSpec(state), { stepTypes, file: `pipeline ${state.name} (TypeScript)` }),
    parseInput: (input: unknown) => parseInput(state, input),
    children: () => childrenOf(state),
    resolveOutput: (steps: Record<string, unknown>, input: unknown) => (state.output ? state.output({ steps, input }) : finalOutputs(state, steps)),
  };
  return self as unknown as TypedPipeline<any, any, any, any, any>;
}

function makeStep(state: State, name: string, second: unknown, third: unknown): StepEntry {
  const where = `pipeline ${state.name}, step ${JSON.stringify(name)}`;
  if (typeof name !== 'string' || name.length === 0) throw new SluiceError('VALIDATION_FAILED', `pipeline ${state.name}: a step name must be a non-empty string`);
  if (state.steps.some((s) => s.name === name)) throw new SluiceError('VALIDATION_FAILED', `${where}: a step with this name is already defined`);
  const prefix = `${state.name}.${name}`;
  if (typeof second === 'function') return inlineStep(state, name, {}, second as UserFunction, prefix);
  if (typeof third === 'function') return inlineStep(state, name, asOptions(second, where), third as UserFunction, prefix);
  const def = isTypedPipeline(second) ? childPipeline(second) : second;
  if (!isStepDef(def)) {
    throw new SluiceError('VALIDATION_FAILED', `${where}: expected a function, a step (command(), llm(), ...) or a pipeline, got ${describe(def)}`);
  }
  const options = asOptions(third, where);
  const bound = def.bind ? def.bind(prefix) : { uses: def.uses, with: def.with, functions: new Map<string, StepFunction>() };
  for (const [fnName, fn] of bound.functions) registerCodeFunction(fnName, fn);
  const spec = stepSpec(bound.uses, bound.with, options, where);
  if (def.output && spec.output === undefined) spec.output = def.output;
  return { name, spec, functions: bound.functions, ...(isTypedPipeline(def.child) ? { child: def.child } : {}) };
}

type UserFunction = (ctx: FunctionContext) => unknown;

function inlineStep(state: State, name: string, options: StepOptions<readonly string[], unknown>, fn: UserFunction, prefix: string): StepEntry {
  const where = `output of step ${name} of pipeline ${state.name}`;
  const schema = options.output;
  const wrapper: StepFunction = isStandardSchema(schema)
    ? async (ctx) => {
        const out = await fn(ctx);
        return validateStandard(schema, out === undefined ? null : out, where, 'OUTPUT_INVALID');
      }
    : (ctx) => fn(ctx);
  const fnName = functionName(prefix, fn);
  registerCodeFunction(fnName, withSource(wrapper, fn));
  const spec = stepSpec('function', { name: fnName }, options, `pipeline ${state.name}, step ${JSON.stringify(name)}`);
  return { name, spec, functions: new Map([[fnName, wrapper]]) };
}

const OPTION_KEYS = ['needs', 'if', 'retry', 'timeout', 'on_failure', 'cache', 'disabled', 'priority', 'concurrency_key', 'concurrency_limit', 'output'] as const;

function asOptions(value: unknown, where: string): StepOptions<readonly string[], unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SluiceError('VALIDATION_FAILED', `${where}: options must be an object, got ${describe(value)}`);
  const unknownKey = Object.keys(value).find((k) => !(OPTION_KEYS as readonly string[]).includes(k));
  if (unknownKey !== undefined) throw new SluiceError('VALIDATION_FAILED', `${where}: unknown option ${JSON.stringify(unknownKey)} (known: ${OPTION_KEYS.join(', ')})`);
  return value as StepOptions<readonly string[], unknown>;
}

/** A YAML step from a code step: `uses`, `with` and the options as written (undefined ones left out). */
function stepSpec(uses: string, withValue: Record<string, unknown>, options: StepOptions<readonly string[], unknown>, where: string): StepSpec {
  const { output, needs, ...rest } = options;
  const spec: StepSpec = { uses, ...(Object.keys(withValue).length > 0 ? { with: withValue } : {}) };
  if (needs !== undefined) spec.needs = [...needs];
  for (const [key, value] of Object.entries(rest)) if (value !== undefined) (spec as unknown as Record<string, unknown>)[key] = value;
  if (output !== undefined) {
    const json = toJsonSchema(output as SchemaLike);
    // A Standard Schema without a JSON form is checked by the inline function's wrapper alone.
    if (json !== null) spec.output = json;
    else if (uses !== 'function') throw new SluiceError('VALIDATION_FAILED', `${where}: output: this schema library gives no JSON Schema; a step that is not a function needs a JSON Schema or a zod 4 schema`);
  }
  return spec;
}

function toSpec(state: State): PipelineSpec {
  const { input, ...rest } = state.options;
  const spec: PipelineSpec = { name: state.name, steps: {} };
  for (const [key, value] of Object.entries(rest)) if (value !== undefined) (spec as unknown as Record<string, unknown>)[key] = value;
  if (input !== undefined) {
    const json = toJsonSchema(input);
    if (json !== null) spec.input = json;
  }
  for (const step of state.steps) spec.steps[step.name] = step.spec;
  return spec;
}

async function parseInput(state: State, input: unknown): Promise<unknown> {
  const schema = state.options.input;
  return isStandardSchema(schema) ? validateStandard(schema, input, `input of pipeline ${state.name}`, 'INPUT_INVALID') : input;
}

function finalOutputs(state: State, steps: Record<string, unknown>): Record<string, unknown> {
  const needed = new Set(state.steps.flatMap((s) => s.spec.needs ?? []));
  const finals: Record<string, unknown> = {};
  for (const s of state.steps) if (!needed.has(s.name)) finals[s.name] = steps[s.name] ?? null;
  return finals;
}

function childrenOf(state: State, seen = new Set<string>()): Array<TypedPipeline<any, any, any, any, any>> {
  const out: Array<TypedPipeline<any, any, any, any, any>> = [];
  for (const { child } of state.steps) {
    if (!child || seen.has(child.name)) continue;
    seen.add(child.name);
    out.push(...child.children().filter((c) => !seen.has(c.name)), child);
    for (const c of child.children()) seen.add(c.name);
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
