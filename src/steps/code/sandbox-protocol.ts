import type { SandboxLogLine } from './log-batch.js';
import type { SandboxResult, SandboxTask } from './sandbox.js';

/** One task posted to a sandbox thread, with the shared flag the host sets to cancel it. */
export interface ThreadRequest {
  id: number;
  task: SandboxTask;
  /** An `Int32Array` of one element over this buffer: non-zero means cancelled. */
  cancel: SharedArrayBuffer;
}

/** What a sandbox thread posts back: log lines in batches and the start of user code as they happen, then the result. */
export type ThreadReply =
  | { id: number; type: 'logs'; lines: SandboxLogLine[] }
  | { id: number; type: 'started' }
  | { id: number; type: 'done'; result: SandboxResult; wasmBytes: number };

/** What a sandbox thread is started with (its `workerData`). */
export interface ThreadSetup {
  /** Niceness the thread gives itself before it runs anything (Linux); 0 keeps the process's. */
  nice: number;
}
