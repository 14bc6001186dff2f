import type { Ajv } from 'ajv';
import { SluiceError, ValidationError } from '../core/errors.js';
import { withDependencies } from '../core/graph.js';
import { depthMessage, tooDeepPath } from '../core/json-depth.js';
import { ajvPackage } from '../core/lazy-packages.js';
import type { CreateRunRequest, StoredPipeline } from '../store/store.js';
import { newRunId } from '../store/ids.js';
import { formatTraceParent, parseTraceParent } from '../telemetry/trace-context.js';
import { renderConcurrencyKeys } from './concurrency-keys.js';

// What Engine.startRuns checks and builds before it asks the store to create runs.

export interface StartRunOptions {
  input?: unknown;
  idempotencyKey?: string;
  priority?: number;
  /** Delayed start, epoch ms. */
  runAt?: number;
  /** Run these steps plus their dependencies only. */
  steps?: string[];
  /** Bypass the step cache. */
  force?: boolean;
  maxParallel?: number;
  /**
   * The W3C `traceparent` of the caller (an HTTP request, an event): the run's spans join its trace. A malformed
   * value is ignored, as the W3C spec says. Default: none (the run's trace id is derived from its id).
   */
  traceparent?: string;
}

/** Checks a run's input: its depth, its size (at most `maxInputBytes`) and the pipeline's input schema. */
export class InputChecks {
  private readonly validators = new Map<string, ReturnType<Ajv['compile']>>();
  private readonly ajv: Ajv = new (ajvPackage().Ajv)({ allErrors: true, strict: false });

  constructor(private readonly maxInputBytes: number) {}

  /** Throws INPUT_INVALID or INPUT_TOO_LARGE naming the pipeline (and, for the schema, each path at fault). */
  check(stored: StoredPipeline, input: unknown): void {
    const deep = tooDeepPath(input);
    if (deep) throw new SluiceError('INPUT_INVALID', `input of pipeline ${stored.name} is ${depthMessage('input', deep)}`);
    const size = Buffer.byteLength(JSON.stringify(input ?? null));
    if (size > this.maxInputBytes) {
      throw new SluiceError('INPUT_TOO_LARGE', `input of pipeline ${stored.name} is ${size} bytes, more than the ${this.maxInputBytes} allowed; store large data as an artifact and pass its reference`);
    }
    const schema = stored.definition.input;
    if (schema === null) return;
    const key = `${stored.name}@${stored.version}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.validators.set(key, validate);
    }
    if (!validate(input)) {
      const issues = (validate.errors ?? []).map((e) => ({ path: `input${e.instancePath.replace(/\//g, '.')}`, message: e.message ?? 'is invalid' }));
      const err = new ValidationError(issues);
      throw new SluiceError('INPUT_INVALID', `input of pipeline ${stored.name} is invalid:\n${err.message}`, { details: issues });
    }
  }
}

/** The store's request for one run of `stored` with `o`; throws INPUT_INVALID or INPUT_TOO_LARGE on bad options. */
export function runRequest(stored: StoredPipeline, o: StartRunOptions, inputs: InputChecks): CreateRunRequest {
  inputs.check(stored, o.input ?? null);
  checkRunTiming(o);
  const selection = o.steps && o.steps.length > 0 ? [...withDependencies(stored.definition, o.steps)] : undefined;
  return {
    pipeline: stored,
    input: o.input ?? null,
    ...(o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey }),
    ...(o.priority === undefined ? {} : { priority: o.priority }),
    ...(o.runAt === undefined ? {} : { runAt: o.runAt }),
    ...(selection === undefined ? {} : { selection }),
    ...(o.force === undefined ? {} : { force: o.force }),
    ...(o.maxParallel === undefined ? {} : { maxParallel: o.maxParallel }),
    ...traceparentOf(o),
  };
}

/** Gives each new run its id now, so that its steps' concurrency keys can read `run.id`, and renders them. */
export async function renderConcurrencyKeysOf(stored: StoredPipeline, requests: CreateRunRequest[], now: () => number): Promise<void> {
  for (const req of requests) {
    req.id = newRunId(now());
    const keys = await renderConcurrencyKeys(stored.definition, { id: req.id, pipeline: stored.name, version: stored.version, input: req.input });
    if (keys) req.concurrencyKeys = keys;
  }
}

/** The run's `traceparent` in its normal form, when the caller's is well formed. */
function traceparentOf(o: StartRunOptions): { traceparent?: string } {
  const parsed = parseTraceParent(o.traceparent);
  return parsed ? { traceparent: formatTraceParent(parsed) } : {};
}

/** Stores keep a run's priority in a 32-bit integer column. */
const PRIORITY_RANGE = [-2_147_483_648, 2_147_483_647] as const;
/** The largest epoch milliseconds a JavaScript `Date` holds (year 275760). */
const MAX_DATE_MS = 8.64e15;

/** Throws INPUT_INVALID naming `priority` or `runAt` when the store could not hold it or it could never come. */
function checkRunTiming(o: StartRunOptions): void {
  const [min, max] = PRIORITY_RANGE;
  if (o.priority !== undefined && !(Number.isInteger(o.priority) && o.priority >= min && o.priority <= max)) {
    throw new SluiceError('INPUT_INVALID', `priority must be an integer from ${min} to ${max}, got ${o.priority}`);
  }
  if (o.runAt !== undefined && !(Number.isFinite(o.runAt) && Math.abs(o.runAt) <= MAX_DATE_MS)) {
    throw new SluiceError('INPUT_INVALID', `runAt must be epoch milliseconds within ±${MAX_DATE_MS} (the range of dates), got ${o.runAt}`);
  }
}
