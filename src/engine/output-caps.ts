import type { ErrorRecord } from '../core/errors.js';

/** Log bytes (UTF-8) kept per attempt by default. */
export const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;
/** Longest error message (and stack) stored, in characters. */
export const MAX_ERROR_CHARS = 64 * 1024;

/**
 * The log budget of one attempt: lines are kept until `maxBytes` of them were, the line that crosses the
 * limit is cut, and the rest are only counted, so a step that logs without end costs no memory or storage
 * (and no redaction work) past the budget. {@link marker} then says how much was dropped.
 */
export class LogBudget {
  private used = 0;
  private droppedBytes = 0;
  private droppedLines = 0;

  constructor(private readonly maxBytes: number = DEFAULT_MAX_LOG_BYTES) {}

  /**
   * The line as it may be stored (cut to what is left of the budget), or undefined when the budget is spent.
   * `prepare` (redaction) runs only on lines that are kept, before the cut, so a secret is never cut in half.
   */
  admit(line: string, prepare: (line: string) => string = (l) => l): string | undefined {
    if (this.used >= this.maxBytes) {
      this.drop(Buffer.byteLength(line), 1);
      return undefined;
    }
    const text = prepare(line);
    const bytes = Buffer.byteLength(text);
    const left = this.maxBytes - this.used;
    if (bytes <= left) {
      this.used += bytes;
      return text;
    }
    // `left` UTF-16 units may take more than `left` bytes; each unit takes at least one, so this ends.
    let kept = text.slice(0, left);
    for (let over = Buffer.byteLength(kept) - left; over > 0; over = Buffer.byteLength(kept) - left) kept = kept.slice(0, kept.length - over);
    this.used = this.maxBytes;
    this.drop(bytes - Buffer.byteLength(kept), 0);
    return kept;
  }

  /** The line that says what was dropped, or undefined when nothing was. */
  marker(): string | undefined {
    if (this.droppedBytes === 0) return undefined;
    const lines = this.droppedLines === 0 ? '' : ` and ${this.droppedLines} more line${this.droppedLines === 1 ? '' : 's'}`;
    return `sluice: log truncated at ${this.maxBytes} bytes for this attempt: ${this.droppedBytes} bytes${lines} dropped`;
  }

  private drop(bytes: number, lines: number): void {
    this.droppedBytes += bytes;
    this.droppedLines += lines;
  }
}

/** The error as stored: message and stack cut to {@link MAX_ERROR_CHARS} with a marker saying how much was cut. */
export function capErrorRecord(error: ErrorRecord): ErrorRecord {
  const message = capText(error.message);
  const stack = error.stack === undefined ? undefined : capText(error.stack);
  if (message === error.message && stack === error.stack) return error;
  return { ...error, message, ...(stack === undefined ? {} : { stack }) };
}

function capText(text: string): string {
  const value = typeof text === 'string' ? text : String(text);
  if (value.length <= MAX_ERROR_CHARS) return value;
  return `${value.slice(0, MAX_ERROR_CHARS)}... (${value.length - MAX_ERROR_CHARS} more characters cut)`;
}
