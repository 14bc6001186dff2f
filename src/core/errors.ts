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
}

/** The one error base of Sluice. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
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

/** Serializable error shape stored on attempts and events. */
export interface ErrorRecord {
  code: string;
  message: string;
  stack?: string;
  retryable?: boolean;
}

/** Converts anything thrown into the stored shape. */
export function toErrorRecord(err: unknown): ErrorRecord {
  if (err instanceof SluiceError) {
    const rec: ErrorRecord = { code: err.code, message: err.message, retryable: err.retryable };
    if (err.stack) rec.stack = err.stack;
    return rec;
  }
  if (err instanceof Error) {
    const raw = (err as unknown as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : 'STEP_FAILED';
    const rec: ErrorRecord = { code, message: err.message, retryable: true };
    if (err.stack) rec.stack = err.stack;
    return rec;
  }
  return { code: 'STEP_FAILED', message: String(err), retryable: true };
}
