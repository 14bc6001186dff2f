import type { SandboxLogLine } from './log-batch.js';
import type { SandboxResult, SandboxTask } from './sandbox.js';

/** What the engine sends a sandbox process: the one task it is to run next. */
export interface ProcessRequest {
  id: number;
  task: SandboxTask;
}

/** What a sandbox process sends back: log lines in batches and the start of user code as they happen, then the result. */
export type ProcessReply =
  | { id: number; type: 'logs'; lines: SandboxLogLine[] }
  | { id: number; type: 'started' }
  | { id: number; type: 'done'; result: SandboxResult; wasmBytes: number };

/** What a sandbox process is started with (JSON in its one argument). */
export interface ProcessSetup {
  /** Niceness of the process; 0 keeps the engine's. */
  nice: number;
}
