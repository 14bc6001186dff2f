/**
 * Errors that cross boundaries (sandbox, store, HTTP, CLI) carry a stable string `code`.
 * Match on `code`, never on `instanceof`: errors are persisted and replayed.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'PIPELINE_NOT_FOUND'
  | 'PIPELINE_DISABLED'
  | 'RUN_NOT_FOUND'
  | 'STEP_NOT_FOUND'
  | 'ILLEGAL_TRANSITION'
  | 'INPUT_INVALID'
  | 'INPUT_TOO_LARGE'
  | 'STEP_FAILED'
  | 'STEP_TIMEOUT'
  | 'RUN_TIMEOUT'
  | 'CANCELLED'
  | 'EXPRESSION_FAILED'
  /** An expression that may run a regex ran past its time limit; the thread evaluating it was stopped. */
  | 'EXPRESSION_TIMEOUT'
  | 'COMMAND_FAILED'
  | 'MODULE_LOAD_FAILED'
  | 'LEASE_LOST'
  | 'STORE_ERROR'
  | 'STORE_UNAVAILABLE'
  | 'STORE_FULL'
  | 'STORE_READONLY'
  | 'VALUE_REFUSED'
  | 'OUTPUT_INVALID'
  | 'UNKNOWN_STEP_TYPE'
  | 'DATASET_NOT_FOUND'
  | 'RECORD_NOT_FOUND'
  | 'RECORD_INVALID'
  | 'INGEST_FAILED'
  | 'EVAL_NOT_FOUND'
  | 'VALUE_NOT_FOUND'
  | 'TARGET_TAKEN'
  | 'PIPELINE_CYCLE'
  | 'RECORD_FAILED'
  | 'CACHE_INPUTS_TOO_LARGE'
  | 'IDEMPOTENCY_CONFLICT'
  | 'WAIT_TIMEOUT'
  | 'DEPENDENCY_MISSING'
  /** A pipeline's `rate_limit` (mode refuse) refused a run start; `details.retry_after_ms` says when to retry. */
  | 'RATE_LIMITED'
  /** A debounce `merge` read a pending run's input that another start changed meanwhile; the engine tries again. */
  | 'FLOW_CONFLICT'
  /** A gate's rewind budget is spent and its `on_fail.then` is `fail`. */
  | 'GATE_FAILED'
  /** The child run a `pipeline` step started failed or was cancelled. */
  | 'CHILD_RUN_FAILED'
  /** A human rejected a blocked step. */
  | 'REJECTED'
  // Raised by the HTTP layer (request shape, routing, auth); each maps to a status in src/server/http-errors.ts.
  | 'REQUEST_INVALID'
  | 'MALFORMED_JSON'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'ROUTE_NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'TOKEN_NOT_FOUND'
  | 'FORBIDDEN'
  | 'NOT_SUPPORTED'
  | 'INTERNAL';

/** Where in a source file a problem sits. Lines and columns are 1-based. */
export interface SourceLocation {
  file?: string;
  line?: number;
  column?: number;
  /** Key path inside the document, e.g. `steps.typing.needs[0]`. */
  path?: string;
}

export interface SluiceErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  details?: unknown;
  /**
   * Keep `details` (JSON) in the stored error record, for readers after the fact (e.g. the stats of an aborted
   * attribute run). Default: false: details stay with the thrown error only.
   */
  recordDetails?: boolean;
}

/**
 * The brand every {@link SluiceError} carries. A registered symbol, so it is the same in every realm and in every
 * copy of this package loaded at once, where `instanceof` against one copy's class would miss the others.
 */
const SLUICE_ERROR = Symbol.for('sluice.error');

/** The one error base of Sluice. Check for it with {@link isSluiceError}, not `instanceof`. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;
  /** Whether {@link toErrorRecord} keeps `details`. */
  readonly recordDetails: boolean;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.recordDetails = options.recordDetails ?? false;
  }

  /** The brand {@link isSluiceError} reads. */
  get [SLUICE_ERROR](): true {
    return true;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; details?: unknown } {
    const out: { code: ErrorCode; message: string; retryable: boolean; details?: unknown } = {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
    };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

/**
 * Whether `e` is a {@link SluiceError} thrown in this process: by its brand, so it holds across realms (a
 * `vm` context, another copy of the package) where `instanceof` does not.
 */
export function isSluiceError(e: unknown): e is SluiceError {
  return typeof e === 'object' && e !== null && (e as { [SLUICE_ERROR]?: unknown })[SLUICE_ERROR] === true;
}

/**
 * The stable code of anything thrown or received: a {@link SluiceError}'s, or the string `code` of a plain object
 * (an error that crossed a process or was read back from the store). Undefined when there is none.
 */
export function errorCodeOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The message of anything thrown: an Error's (also one from another realm, such as a `code` step's sandbox, where
 * `instanceof Error` is false) or any object's string `message`; else the value as text.
 */
export function errorMessage(e: unknown): string {
  const message = typeof e === 'object' && e !== null ? (e as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(e);
}

/** Whether `e` carries the error code `code` (a thrown SluiceError, or a plain error record from elsewhere). */
export function hasErrorCode(e: unknown, code: ErrorCode): boolean {
  return errorCodeOf(e) === code;
}

/** One problem found while validating a pipeline definition. */
export interface ValidationIssue extends SourceLocation {
  message: string;
}

/** Formats an issue as `file:line:col: path: message`. */
export function formatIssue(issue: ValidationIssue): string {
  const where = [issue.file, issue.line, issue.column].filter((p) => p !== undefined).join(':');
  const path = issue.path ? `${issue.path}: ` : '';
  return `${where ? `${where}: ` : ''}${path}${issue.message}`;
}

/** Thrown when a pipeline definition does not validate; `issues` lists every problem found. */
export class ValidationError extends SluiceError {
  readonly issues: ValidationIssue[];

  constructor(issues: ValidationIssue[]) {
    super('VALIDATION_FAILED', issues.map(formatIssue).join('\n'), { details: issues });
    this.issues = issues;
  }
}

/** Whether `e` is a {@link ValidationError} (by brand and code, not `instanceof`): it lists `issues`. */
export function isValidationError(e: unknown): e is ValidationError {
  return isSluiceError(e) && e.code === 'VALIDATION_FAILED' && Array.isArray((e as { issues?: unknown }).issues);
}

/** Serializable error shape stored on attempts and events. */
export interface ErrorRecord {
  code: string;
  message: string;
  stack?: string;
  retryable?: boolean;
  /** What the error was about, when the error asked to keep it (`recordDetails`). */
  details?: unknown;
}

/**
 * Converts anything thrown into the stored shape. A `SluiceError` says what went wrong in its message and keeps
 * no stack (its frames are the engine's); another Error keeps the frames of the user's code only (see
 * {@link userStack}).
 */
export function toErrorRecord(err: unknown): ErrorRecord {
  if (isSluiceError(err)) {
    const rec: ErrorRecord = { code: err.code, message: err.message, retryable: err.retryable };
    if (err.recordDetails && err.details !== undefined) rec.details = err.details;
    return rec;
  }
  if (err instanceof Error) {
    const raw = (err as unknown as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : 'STEP_FAILED';
    const rec: ErrorRecord = { code, message: err.message, retryable: true };
    const stack = userStack(err.stack);
    if (stack !== undefined) rec.stack = stack;
    return rec;
  }
  return { code: 'STEP_FAILED', message: String(err), retryable: true };
}

// The package's own folders (dist/ when built, src/ under a TypeScript loader) and its dependencies: frames
// there are the engine's, which users cannot act on and should not see.
const PACKAGE_ROOT = decodeURIComponent(new URL('../../', import.meta.url).pathname);
const ENGINE_FOLDERS = ['dist/', 'src/', 'node_modules/'].map((folder) => `${PACKAGE_ROOT}${folder}`);

/**
 * `stack` with only the frames of the user's code: frames inside this package (its dist/, src/ and
 * node_modules/) and Node's own (`node:internal/...`, `<anonymous>`) are dropped. Undefined when no frame of
 * the user's is left: the message then says all there is.
 */
export function userStack(stack: string | undefined): string | undefined {
  if (stack === undefined) return undefined;
  const lines = stack.split('\n');
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  if (firstFrame < 0) return undefined;
  const frames = lines.slice(firstFrame).filter((line) => /^\s+at /.test(line) && !isEngineFrame(line));
  return frames.length === 0 ? undefined : [...lines.slice(0, firstFrame), ...frames].join('\n');
}

function isEngineFrame(line: string): boolean {
  if (/\(?node:|\(<anonymous>\)|^\s+at <anonymous>$/.test(line)) return true;
  const at = line.replace(/^\s+at .*?\(?(?:file:\/\/)?(\/[^()]*?)(?::\d+:\d+)?\)?$/, '$1');
  const file = at.startsWith('/') ? safeDecode(at) : at;
  return ENGINE_FOLDERS.some((folder) => file.startsWith(folder));
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
