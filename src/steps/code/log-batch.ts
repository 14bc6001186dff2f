import type { LogStream } from '../step-type.js';

/** One console line of a sandbox, as it crosses from its process to the engine. */
export interface SandboxLogLine {
  stream: LogStream;
  line: string;
}

/** Bytes (UTF-16 units) of lines gathered before they are posted at once. */
export const LOG_BATCH_CHARS = 64 * 1024;
/** Longest a line waits in a batch before it is posted (checked on each line and each interrupt poll). */
export const LOG_BATCH_MS = 20;

/**
 * Gathers a sandbox's console lines and posts them in batches: a step logging as fast as it can costs the main
 * thread one message per {@link LOG_BATCH_CHARS} rather than one per line. A line after {@link LOG_BATCH_MS}
 * without a post goes at once; one that follows closely waits at most {@link LOG_BATCH_MS} while the sandbox keeps
 * polling ({@link poll}), and {@link flush} posts the rest before the result, so lines arrive in order and before
 * the step ends.
 */
export class LogBatch {
  private lines: SandboxLogLine[] = [];
  private chars = 0;
  private since = 0;
  private posted = -Infinity;

  constructor(
    private readonly post: (lines: SandboxLogLine[]) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(stream: LogStream, line: string): void {
    if (this.lines.length === 0) {
      this.since = this.now();
      // A line after a quiet spell goes at once: the code that follows may be one long native call, which no
      // interrupt poll interrupts. Only lines that follow others closely wait for a batch.
      if (this.since - this.posted >= LOG_BATCH_MS) {
        this.posted = this.since;
        this.post([{ stream, line }]);
        return;
      }
    }
    this.lines.push({ stream, line });
    this.chars += line.length;
    if (this.chars >= LOG_BATCH_CHARS) this.flush();
    else this.poll();
  }

  /** Posts the batch if its first line has waited {@link LOG_BATCH_MS}. */
  poll(): void {
    if (this.lines.length > 0 && this.now() - this.since >= LOG_BATCH_MS) this.flush();
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const lines = this.lines;
    this.lines = [];
    this.chars = 0;
    this.posted = this.now();
    this.post(lines);
  }
}
