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

/** What the engine sends a sandbox process: a task to run, or the cancel of the one it runs. */
export type ProcessRequest = { type: 'run'; id: number; task: SandboxTask } | { type: 'cancel'; id: number };

/** What a sandbox process sends back: console lines as they come, then how the task ended. */
export type ProcessReply = { id: number; type: 'logs'; lines: SandboxLogLine[] } | { id: number; type: 'done'; result: SandboxResult };

/** What a sandbox process is started with (JSON in its one argument). */
export interface ProcessSetup {
  /** Niceness of the process and of its scheduling group (Linux); 0 keeps the engine's. */
  nice: number;
  /** How far past its time limit a task may go before its thread is terminated, in ms. */
  graceMs: number;
}
