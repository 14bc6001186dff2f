import type { ValidateFunction } from 'ajv';
import { ajvPackage } from './lazy-packages.js';
import { stepIssues, unwrapCondition } from './check-steps.js';
import { parseDuration } from './duration.js';
import { buildFlowControl, flowIssues, type FlowControl } from './flow-control.js';
import { ValidationError, type ValidationIssue } from './errors.js';
import { sha256, stableStringify } from './hash.js';
import { formatKeyPath, isRecord, type KeyPath, type Locate } from './key-path.js';
import type { AttributeConfig, CacheFiles, CacheSpec, Pipeline, PipelineSpec, RetryPolicy, RetrySpec, Step, StepSpec, Trigger } from './model.js';
import { pipelineJsonSchema } from './pipeline-schema.js';
import { describeValue, schemaIssues, type RawIssue } from './schema-issues.js';
import type { StepSchemas } from './step-schemas.js';

/** Options of {@link normalizePipeline}. */
export interface NormalizeOptions {
  /** Step types that `uses` may name; `with` is checked against their config schema. */
  stepTypes: StepSchemas;
  /** Named in every issue. */
  file?: string;
  /** Maps a key path to its position in `file`, e.g. from `parsePipelineText`. Without it, issues carry no line. */
  locate?: Locate;
}

/** Retry policy when neither the step nor `defaults.retry` say otherwise. */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  attempts: 1,
  backoff: 'exponential',
  delayMs: 1000,
  maxDelayMs: 60_000,
  jitter: true,
};

/** Steps of one run at once, when `max_parallel` is not given. */
export const DEFAULT_MAX_PARALLEL = 4;

let specValidator: ValidateFunction | undefined;

/** The pipeline schema's validator, compiled at first use: compiling it costs more than loading the library. */
function validateSpec(spec: unknown): ValidateFunction['errors'] {
  specValidator ??= new (ajvPackage().Ajv)({ allErrors: true, verbose: true, allowUnionTypes: true }).compile(pipelineJsonSchema);
  return specValidator(spec) ? null : (specValidator.errors ?? []);
}

/**
 * Validates a pipeline definition (as parsed from YAML/JSON or exported by a module) and fills in every
 * default. Collects all problems and throws them as one `ValidationError`; each issue names the file, the
 * line and column (when `locate` is given), the key path, and what was expected.
 *
 * Defaults: description '', max_parallel 4, fail_fast true, timeout none, disabled false, input null,
 * triggers [] (cron timezone UTC); per step: needs [], with {}, if null, retry = step.retry over
 * defaults.retry over {@link DEFAULT_RETRY}, timeout = step.timeout or defaults.timeout or none,
 * on_failure abort, cache true (its object form: inputs [], outputs [], key none, outputs_unchanged false),
 * disabled false, priority 0, concurrency none (limit 1 when only a key is
 * given), output null. Steps keep the order they are written in.
 */
export function normalizePipeline(spec: unknown, options: NormalizeOptions): Pipeline {
  const issues = collectIssues(spec, options.stepTypes);
  if (issues.length > 0) throw new ValidationError(placeIssues(issues, options));
  return wrapAttribute(buildPipeline(spec as PipelineSpec, options.locate), spec as PipelineSpec);
}

/** Identity of a normalized definition: sha256 of its stable JSON. Equal definitions, equal hash. */
export function pipelineVersionHash(p: Pipeline): string {
  return sha256(stableStringify(p));
}

function collectIssues(spec: unknown, stepTypes: StepSchemas): RawIssue[] {
  if (!isRecord(spec)) {
    const message = `expected a pipeline definition (a mapping with name and steps), got ${describeValue(spec)}`;
    return [{ path: [], target: 'value', message }];
  }
  const issues = nonJsonIssues(spec, []);
  const schemaErrors = validateSpec(spec);
  if (schemaErrors) issues.push(...schemaIssues(schemaErrors, spec));
  issues.push(...triggerIssues(spec.triggers), ...attributeIssues(spec), ...flowIssues(spec));
  if (isRecord(spec.steps)) issues.push(...stepIssues(spec.steps, stepTypes), ...internalStepIssues(spec.steps));
  return issues;
}

/** Keys that only an attribute pipeline may have, besides the three that make one. */
const ATTRIBUTE_OPTIONS = ['batch_size', 'on_record_failure', 'concurrency'] as const;

/** An attribute pipeline needs all of dataset, target and source; its options need the three. */
function attributeIssues(spec: Record<string, unknown>): RawIssue[] {
  const given = (['dataset', 'target', 'source'] as const).filter((k) => spec[k] !== undefined);
  const issues: RawIssue[] = [];
  if (given.length > 0 && given.length < 3) {
    for (const key of (['dataset', 'target', 'source'] as const).filter((k) => spec[k] === undefined)) {
      issues.push({ path: [], target: 'key', message: `an attribute pipeline needs ${key} too (it has ${given.join(', ')}): dataset, target and source go together` });
    }
  }
  if (given.length === 0) {
    for (const key of ATTRIBUTE_OPTIONS.filter((k) => spec[k] !== undefined)) {
      issues.push({ path: [key], target: 'key', message: `${key} applies to attribute pipelines only: add dataset, target and source, or remove it` });
    }
  }
  const fields = isRecord(spec.source) && Array.isArray(spec.source.fields) ? spec.source.fields : [];
  if (typeof spec.target === 'string' && fields.includes(spec.target)) {
    const message = `the target ${spec.target} cannot also be a source field: the pipeline would read what it writes (cycle ${spec.target} -> ${spec.target})`;
    issues.push({ path: ['source', 'fields', fields.indexOf(spec.target)], target: 'value', message });
  }
  return issues;
}

/** The `attribute` step type is what runs an attribute pipeline; nobody names it. */
function internalStepIssues(steps: Record<string, unknown>): RawIssue[] {
  return Object.entries(steps).flatMap(([name, step]): RawIssue[] =>
    isRecord(step) && step.uses === ATTRIBUTE_STEP_TYPE
      ? [{ path: ['steps', name, 'uses'], target: 'value', message: `step type "${ATTRIBUTE_STEP_TYPE}" is internal: it is how an attribute pipeline (dataset, target, source) runs` }]
      : [],
  );
}

/** Functions, class instances and the like (possible in TS modules) cannot be stored or hashed. */
function nonJsonIssues(value: unknown, path: KeyPath): RawIssue[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => nonJsonIssues(item, [...path, i]));
  if (isRecord(value) && isPlainObject(value)) {
    return Object.entries(value).flatMap(([key, item]) => (item === undefined ? [] : nonJsonIssues(item, [...path, key])));
  }
  const plain = value === null || ['string', 'boolean'].includes(typeof value) || (typeof value === 'number' && Number.isFinite(value));
  if (plain) return [];
  return [{ path, target: 'value', message: `expected a JSON value, got ${kindOf(value)}` }];
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function kindOf(value: unknown): string {
  if (typeof value === 'object' && value !== null) return `an instance of ${value.constructor?.name ?? 'a class'}`;
  return typeof value === 'number' ? String(value) : `a ${typeof value}`;
}

const CRON_MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

function triggerIssues(triggers: unknown): RawIssue[] {
  if (!Array.isArray(triggers)) return [];
  return triggers.flatMap((trigger, i): RawIssue[] => {
    if (!isRecord(trigger)) return [];
    const path = ['triggers', i];
    const issues: RawIssue[] = [];
    if (typeof trigger.cron === 'string' && !isCronShaped(trigger.cron)) {
      const message = `expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or a macro such as @daily, got ${describeValue(trigger.cron)}`;
      issues.push({ path: [...path, 'cron'], target: 'value', message });
    }
    if (typeof trigger.timezone === 'string' && !isTimeZone(trigger.timezone)) {
      const message = `unknown time zone ${describeValue(trigger.timezone)}: expected an IANA name such as UTC or Europe/Berlin`;
      issues.push({ path: [...path, 'timezone'], target: 'value', message });
    }
    return issues;
  });
}

/** Only the shape: the scheduler's parser has the last word on field values. */
function isCronShaped(cron: string): boolean {
  const fields = cron.trim().split(/\s+/);
  return CRON_MACROS.has(cron.trim()) || fields.length === 5 || fields.length === 6;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function placeIssues(issues: RawIssue[], options: NormalizeOptions): ValidationIssue[] {
  const placed = issues.map((issue) => {
    const out: ValidationIssue = { message: issue.message };
    if (options.file !== undefined) out.file = options.file;
    const position = options.locate?.(issue.path, issue.target);
    if (position) [out.line, out.column] = [position.line, position.column];
    if (issue.path.length > 0) out.path = formatKeyPath(issue.path);
    return out;
  });
  // Reading order; issues without a position keep theirs, after the others.
  return placed.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? Infinity) - (b.column ?? Infinity) || 0);
}

function buildPipeline(spec: PipelineSpec, locate: Locate | undefined): Pipeline {
  const retry = mergeRetry(DEFAULT_RETRY, spec.defaults?.retry);
  const timeoutMs = optionalDuration(spec.defaults?.timeout);
  return {
    name: spec.name,
    description: spec.description ?? '',
    maxParallel: spec.max_parallel ?? DEFAULT_MAX_PARALLEL,
    failFast: spec.fail_fast ?? true,
    timeoutMs: optionalDuration(spec.timeout),
    disabled: spec.disabled ?? false,
    input: spec.input === undefined ? null : cloneJson(spec.input),
    triggers: (spec.triggers ?? []).map(buildTrigger),
    steps: writtenOrder(Object.keys(spec.steps), locate).map((name) => buildStep(name, spec.steps[name]!, retry, timeoutMs)),
    ...(spec.retention === undefined ? {} : { retentionMs: parseDuration(spec.retention) }),
    ...flowOf(spec),
  };
}

/** The pipeline's flow rules, as the `flow` field (absent when none, which keeps other pipelines' version hash). */
function flowOf(spec: PipelineSpec): { flow?: FlowControl } {
  const flow = buildFlowControl(spec);
  return flow ? { flow } : {};
}

/** Name and type of the one engine step of an attribute pipeline. */
export const ATTRIBUTE_STEP_TYPE = 'attribute';

/** Defaults of attribute pipelines (PRODUCT.md "Attribute pipelines"). */
export const DEFAULT_BATCH_SIZE = 200;
export const DEFAULT_ATTRIBUTE_CONCURRENCY = 8;

/**
 * An attribute pipeline runs as one engine step of the internal `attribute` type, which selects the records
 * to compute, runs the written steps over them batch by batch and stores the values; the written steps are
 * kept in `attribute.steps`.
 */
function wrapAttribute(p: Pipeline, spec: PipelineSpec): Pipeline {
  if (spec.dataset === undefined || spec.target === undefined || spec.source === undefined) return p;
  const attribute: AttributeConfig = {
    dataset: spec.dataset,
    target: spec.target,
    fields: [...spec.source.fields],
    batchSize: spec.batch_size ?? DEFAULT_BATCH_SIZE,
    onRecordFailure: spec.on_record_failure ?? 'abort',
    concurrency: spec.concurrency ?? DEFAULT_ATTRIBUTE_CONCURRENCY,
    steps: p.steps,
  };
  const step: Step = {
    ...buildStep(ATTRIBUTE_STEP_TYPE, { uses: ATTRIBUTE_STEP_TYPE, cache: false }, DEFAULT_RETRY, null),
    timeoutMs: null,
  };
  return { ...p, steps: [step], attribute };
}

/**
 * JavaScript objects list integer-like keys (a step named `1`) first, whatever the file says; the source
 * positions, when known, restore the order as written.
 */
function writtenOrder(names: string[], locate: Locate | undefined): string[] {
  if (!locate) return names;
  const offsetOf = (name: string) => {
    const at = locate(['steps', name], 'key');
    return at ? at.line * 1e6 + at.column : Infinity;
  };
  return [...names].sort((a, b) => offsetOf(a) - offsetOf(b));
}

function buildStep(name: string, spec: StepSpec, retry: RetryPolicy, timeoutMs: number | null): Step {
  return {
    name,
    uses: spec.uses,
    needs: [...(spec.needs ?? [])],
    with: cloneJson(spec.with ?? {}),
    if: spec.if === undefined ? null : unwrapCondition(spec.if),
    retry: mergeRetry(retry, spec.retry),
    timeoutMs: spec.timeout === undefined ? timeoutMs : parseDuration(spec.timeout),
    onFailure: spec.on_failure ?? 'abort',
    cache: spec.cache !== false,
    ...(typeof spec.cache === 'object' ? { cacheFiles: buildCacheFiles(spec.cache) } : {}),
    disabled: spec.disabled ?? false,
    priority: spec.priority ?? 0,
    concurrencyKey: spec.concurrency_key ?? null,
    // A key alone makes the steps sharing it run one at a time.
    concurrencyLimit: spec.concurrency_limit ?? (spec.concurrency_key === undefined ? null : 1),
    output: spec.output === undefined ? null : cloneJson(spec.output),
  };
}

function buildCacheFiles(spec: CacheSpec): CacheFiles {
  return {
    inputs: [...(spec.inputs ?? [])],
    outputs: [...(spec.outputs ?? [])],
    key: spec.key ?? null,
    outputsUnchanged: spec.outputs_unchanged ?? false,
  };
}

function buildTrigger(spec: NonNullable<PipelineSpec['triggers']>[number]): Trigger {
  return 'cron' in spec
    ? { kind: 'cron', cron: spec.cron, timezone: spec.timezone ?? 'UTC', ...(spec.catchup === undefined ? {} : { catchup: spec.catchup }) }
    : { kind: 'event', event: spec.event };
}

function mergeRetry(base: RetryPolicy, spec: RetrySpec | undefined): RetryPolicy {
  return {
    attempts: spec?.attempts ?? base.attempts,
    backoff: spec?.backoff ?? base.backoff,
    delayMs: spec?.delay === undefined ? base.delayMs : parseDuration(spec.delay),
    maxDelayMs: spec?.max_delay === undefined ? base.maxDelayMs : parseDuration(spec.max_delay),
    jitter: spec?.jitter ?? base.jitter,
  };
}

function optionalDuration(value: string | number | undefined): number | null {
  return value === undefined ? null : parseDuration(value);
}

/** A copy sharing nothing with the caller's object, so later edits to a TS spec cannot change a stored pipeline. */
function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
