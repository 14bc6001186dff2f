import { parseDuration } from '../../core/duration.js';
import { SluiceError, errorMessage } from '../../core/errors.js';
import type { JsonSchema } from '../../core/model.js';
import type { StepContext, StepType } from '../step-type.js';
import { parseByteSize } from './byte-size.js';
import {
  EMPTY_HEAD_CHARS,
  MAX_MESSAGE_CHARS,
  USER_FILE,
  USER_LINE_OFFSET,
  wrapUserCode,
  wrappedFunctionText,
  type DriverFailureHead,
  type DriverSuccessHead,
  type RawGuestError,
} from './guest-source.js';
import type { GuestError, SandboxResult } from './sandbox.js';
import { sandboxPool } from './sandbox-pool.js';

/** What happens when one item of a batch throws. */
export type ItemErrorMode = 'abort' | 'continue';

/** `with` of a `code` step. */
export interface CodeConfig {
  /**
   * A JavaScript function body; `return` gives the output (`undefined` becomes `null`). A returned promise is
   * awaited, and a body that uses `await` runs as an async function. It sees `input`,
   * `steps`, `run`, `$json` (the item in batch mode, `input` otherwise), `$index` (the item's position, `null`
   * outside batch mode), `$meta` (`{ run_id, attempt, pipeline, version, step }`) and `$value` (in an attribute
   * pipeline, the record's current value; null otherwise), all plain JSON data.
   */
  code: string;
  /** Batch mode: the body runs once per item, in one entry into the sandbox; the output is the array of results. */
  items?: unknown[];
  /**
   * Batch mode only. `abort`: the first item that throws fails the step, naming its index. `continue`: that
   * item's result becomes `{ error: { message, line, column } }` and the rest still run. Default: `abort`.
   */
  on_item_error?: ItemErrorMode;
  /** Wall-clock limit of one entry into the sandbox (the whole batch in batch mode). Default: 1 s. */
  timeout?: string | number;
  /** Heap limit of the sandbox, e.g. `64MiB` or a number of bytes; 1 MiB to 1 GiB. Default: 64 MiB. */
  memory_limit?: string | number;
  /** Largest output, as UTF-8 JSON, e.g. `1MiB` or a number of bytes. Default: 1 MiB. */
  max_output?: string | number;
}

const DEFAULT_TIMEOUT_MS = 1_000;
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
const MIN_MEMORY_BYTES = 1024 * 1024;
/** WASM32 memory tops out at 2 GiB here; a sandbox process whose memory grew is replaced after its task. */
const MAX_MEMORY_BYTES = 1024 * 1024 * 1024;
const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/**
 * Largest data handed to the sandbox (input, upstream outputs, items, as JSON characters): parsing it is one
 * native call the interrupt handler cannot stop, so it is kept to what parses in a fraction of a second.
 */
export const MAX_PAYLOAD_CHARS = 16 * 1024 * 1024;
const ITEM_ERROR_MODES: readonly ItemErrorMode[] = ['abort', 'continue'];

const sizeSchema: JsonSchema = { anyOf: [{ type: 'string' }, { type: 'number', minimum: 0 }] };

const codeConfigSchema: JsonSchema = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    items: {},
    on_item_error: { enum: ITEM_ERROR_MODES },
    timeout: sizeSchema,
    memory_limit: sizeSchema,
    max_output: sizeSchema,
  },
  required: ['code'],
  additionalProperties: false,
};

/** The config after defaults and parsing. */
interface CodePlan {
  code: string;
  items: unknown[] | undefined;
  continueOnError: boolean;
  timeoutMs: number;
  memoryBytes: number;
  maxOutputBytes: number;
}

/** How a thrown value is reported, in the step error and as a batch item's `{ error }`. */
interface ItemError {
  message: string;
  /** Line and column in `code` (1-based), or null when the value was thrown from elsewhere. */
  line: number | null;
  column: number | null;
}

const LOCATION = new RegExp(`${USER_FILE.replace('.', '\\.')}:(\\d+):(\\d+)`);

/**
 * Creates the `code` step type: untrusted JavaScript in a QuickJS WASM sandbox with no I/O and no host
 * objects, only JSON data in and out. Each execution gets a fresh QuickJS runtime in a child process of the
 * engine's sandbox pool (see {@link sandboxPool}), so code at its CPU limit never blocks the event loop. A body
 * that returns a promise (an async body) is awaited inside the sandbox, within the same limits.
 *
 * Failures: user code that throws, rejects or does not compile -> `STEP_FAILED` with the line and column in
 * `code`; over `timeout` -> `STEP_TIMEOUT`; over `memory_limit` or `max_output`, data over 16 MiB of JSON, a
 * promise that can never settle -> `STEP_FAILED` with `details.reason` `out_of_memory` / `output_too_large` /
 * `input_too_large` / `promise_never_settled`. None is retryable: the same code fails the same way.
 */
export function createCodeStep(): StepType<CodeConfig> {
  return {
    type: 'code',
    configSchema: codeConfigSchema,
    async execute(ctx, config) {
      const plan = planExecution(config);
      return readEnvelope(await runPlan(ctx, plan, buildPayload(ctx, plan)), plan);
    },
  };
}

/** Per-item context of {@link runCodeItems}. */
export interface CodeItems {
  /** What each call sees as `$json`. */
  items: unknown[];
  /** What each call sees as `$value` (default null). */
  values?: unknown[];
  /** What each call sees as `steps` (default: the step context's). */
  steps?: Array<Record<string, unknown>>;
}

/** One result per item of {@link runCodeItems}: its output, or what it threw. */
export type CodeItemResult = { ok: true; output: unknown } | { ok: false; error: SluiceError };

/**
 * Batch mode with a context per item, for callers that run a `code` step over many records at once (attribute
 * pipelines): one entry into the sandbox for all items; an item that throws fails alone, whatever
 * `on_item_error` says. Limits (timeout, memory, output) apply to the whole batch, as in batch mode.
 */
export async function runCodeItems(ctx: StepContext, config: CodeConfig, batch: CodeItems): Promise<CodeItemResult[]> {
  const plan = { ...planExecution({ ...config, items: batch.items }), continueOnError: true };
  const payload = buildPayload(ctx, plan, batch);
  const text = await runPlan(ctx, plan, payload);
  const { output, errors } = splitEnvelope(text, plan);
  if (!Array.isArray(output) || output.length !== batch.items.length) throw malformedOutput();
  const out: CodeItemResult[] = output.map((o) => ({ ok: true, output: o }));
  for (const [index, error] of errors) out[index] = { ok: false, error: userCodeFailed({ index: null, error }) };
  return out;
}

async function runPlan(ctx: StepContext, plan: CodePlan, payload: string): Promise<string> {
  if (payload.length > MAX_PAYLOAD_CHARS) throw inputTooLarge(ctx, payload.length);
  if (payload.length > plan.memoryBytes) throw outOfMemory(plan);
  const task = {
    functionSource: wrapUserCode(plan.code),
    functionText: wrappedFunctionText(plan.code),
    fileName: USER_FILE,
    payload,
    timeoutMs: plan.timeoutMs,
    memoryBytes: plan.memoryBytes,
    maxOutputChars: plan.maxOutputBytes + EMPTY_HEAD_CHARS,
  };
  const result = await sandboxPool().run(task, { signal: ctx.signal, log: (stream, line) => ctx.log(stream, line) });
  return interpretResult(result, plan, ctx);
}

function planExecution(config: CodeConfig): CodePlan {
  if (typeof config.code !== 'string') throw invalidConfig('`code` must be a string (a function body)');
  if (config.items !== undefined && !Array.isArray(config.items)) {
    throw invalidConfig(`\`items\` must be an array (got ${typeof config.items})`);
  }
  const mode = config.on_item_error ?? 'abort';
  if (!ITEM_ERROR_MODES.includes(mode)) throw invalidConfig(`\`on_item_error\` must be one of ${ITEM_ERROR_MODES.join(', ')}`);
  const memoryBytes = parseLimit('memory_limit', config.memory_limit, DEFAULT_MEMORY_BYTES, parseByteSize);
  if (memoryBytes < MIN_MEMORY_BYTES || memoryBytes > MAX_MEMORY_BYTES) {
    throw invalidConfig('`memory_limit` must be between 1 MiB and 1 GiB');
  }
  return {
    code: config.code,
    items: config.items,
    continueOnError: mode === 'continue',
    timeoutMs: parseLimit('timeout', config.timeout, DEFAULT_TIMEOUT_MS, parseDuration),
    memoryBytes,
    maxOutputBytes: parseLimit('max_output', config.max_output, DEFAULT_MAX_OUTPUT_BYTES, parseByteSize),
  };
}

function parseLimit(
  name: string,
  value: string | number | undefined,
  fallback: number,
  parse: (value: string | number) => number,
): number {
  if (value === undefined) return fallback;
  try {
    return parse(value);
  } catch (err) {
    throw invalidConfig(`\`${name}\`: ${errorMessage(err)}`);
  }
}

/** All data crosses as one JSON string; the sandbox parses it once. */
function buildPayload(ctx: StepContext, plan: CodePlan, batch?: CodeItems): string {
  const meta = { run_id: ctx.run.id, attempt: ctx.run.attempt, pipeline: ctx.run.pipeline, version: ctx.run.version, step: ctx.step };
  return JSON.stringify({
    input: ctx.input ?? null,
    steps: ctx.steps,
    run: ctx.run,
    meta,
    items: plan.items,
    values: batch?.values,
    itemSteps: batch?.steps,
    continueOnError: plan.continueOnError,
  });
}

/** The driver's text, or the error the sandbox ended with. */
function interpretResult(result: SandboxResult, plan: CodePlan, ctx: StepContext): string {
  switch (result.status) {
    case 'returned':
      return result.text;
    case 'threw':
      throw uncaughtError(result.error);
    case 'timeout':
      throw new SluiceError('STEP_TIMEOUT', `code step: exceeded its time limit of ${plan.timeoutMs} ms`, {
        retryable: false,
        details: { timeout_ms: plan.timeoutMs },
      });
    case 'cancelled':
      throw abortError(ctx.signal);
    case 'out_of_memory':
      throw outOfMemory(plan);
    case 'output_too_large':
      throw outputTooLarge(result.chars, plan);
    case 'unsettled':
      throw stepFailed(
        `code step ${ctx.step}: the promise its code returned never settled (no pending job was left that could settle it)`,
        { reason: 'promise_never_settled' },
      );
    case 'crashed':
      throw stepFailed(`code step: the sandbox failed and was reset (${result.message})`, { reason: 'sandbox_crashed' });
  }
}

/** Splits the driver's text into its head and the output; fills in the item errors of a batch. */
function readEnvelope(text: string, plan: CodePlan): unknown {
  const { output, errors } = splitEnvelope(text, plan);
  for (const [index, error] of errors) {
    if (Array.isArray(output) && index in output) output[index] = { error: toItemError(error) };
  }
  return output;
}

function splitEnvelope(text: string, plan: CodePlan): { output: unknown; errors: DriverSuccessHead['errors'] } {
  const bytes = Buffer.byteLength(text) - EMPTY_HEAD_CHARS;
  if (bytes > plan.maxOutputBytes) throw outputTooLarge(bytes, plan);
  const newline = text.indexOf('\n');
  const head = parseDriverJson(text.slice(0, newline)) as Partial<DriverSuccessHead & DriverFailureHead> | null;
  if (head?.failed !== undefined) throw userCodeFailed(head.failed);
  const output = parseDriverJson(text.slice(newline + 1));
  if (!Array.isArray(head?.errors)) throw malformedOutput();
  return { output, errors: head.errors };
}

function parseDriverJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw malformedOutput();
  }
}

function malformedOutput(): SluiceError {
  return stepFailed('code step: the sandbox returned malformed output', { reason: 'malformed_output' });
}

function userCodeFailed(failure: DriverFailureHead['failed']): SluiceError {
  const { message, line, column } = toItemError(failure.error);
  const where = line === null ? '' : ` (line ${line}, column ${column})`;
  const what = failure.output ? 'returned a value that is not JSON-serializable' : 'threw';
  const item = failure.index === null ? '' : ` on item ${failure.index}`;
  return stepFailed(`code step: code ${what}${item}: ${message}${where}`, {
    reason: 'code_threw',
    index: failure.index,
    message,
    line,
    column,
  });
}

/** Stack lines count from the wrapper's first line; subtracting its offset gives lines in the user's `code`. */
function toItemError([name, message, where]: RawGuestError): ItemError {
  const match = LOCATION.exec(String(where).slice(0, 200));
  // The driver cuts messages already, but it runs beside user code: the host does not rely on it.
  const text = String(message);
  const cut = text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}... (${text.length - MAX_MESSAGE_CHARS} more characters cut)` : text;
  return {
    message: name === '' ? cut : `${String(name).slice(0, 100)}: ${cut}`,
    line: match ? Number(match[1]) - USER_LINE_OFFSET : null,
    column: match ? Number(match[2]) : null,
  };
}

/** Compile errors and errors thrown at the top level reach the host unwrapped, with their whole stack. */
function uncaughtError(error: GuestError): SluiceError {
  return userCodeFailed({ index: null, error: [error.name, error.message, error.stack] });
}

function inputTooLarge(ctx: StepContext, chars: number): SluiceError {
  return stepFailed(
    `code step ${ctx.step}: its input, upstream outputs and items are ${chars} characters of JSON, over the ${MAX_PAYLOAD_CHARS} the sandbox accepts; pass large data as an artifact`,
    { reason: 'input_too_large', max_input: MAX_PAYLOAD_CHARS },
  );
}

function outOfMemory(plan: CodePlan): SluiceError {
  return stepFailed(`code step: exceeded its memory limit of ${plan.memoryBytes} bytes`, {
    reason: 'out_of_memory',
    memory_limit: plan.memoryBytes,
  });
}

function outputTooLarge(size: number, plan: CodePlan): SluiceError {
  return stepFailed(
    `code step: output of at least ${size} bytes exceeds max_output of ${plan.maxOutputBytes} bytes`,
    { reason: 'output_too_large', max_output: plan.maxOutputBytes },
  );
}

/** Same rule as the `function` step: an Error reason passes through, anything else becomes `CANCELLED`. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException)) return reason;
  return new SluiceError('CANCELLED', 'step was cancelled');
}

function stepFailed(message: string, details: Record<string, unknown>): SluiceError {
  return new SluiceError('STEP_FAILED', message, { retryable: false, details });
}

function invalidConfig(message: string): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `code step: ${message}`);
}
