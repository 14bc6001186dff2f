/**
 * Entry of a sandbox worker thread: runs one {@link SandboxTask} at a time, off the main event loop. Log lines
 * are posted in batches (log-batch.ts), the start of user code as it happens; cancellation arrives through shared memory, because
 * the thread's own event loop is blocked while the sandbox runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LogBatch } from './log-batch.js';
import { runInSandbox, wasmBytes } from './sandbox.js';
import type { ThreadReply, ThreadRequest, ThreadSetup } from './sandbox-protocol.js';
import { niceThisThread } from './thread-priority.js';
import { errorMessage } from '../../core/errors.js';

if (parentPort === null) throw new Error('sandbox-thread must run in a worker thread');
const port = parentPort;
// With the CPU short, the main thread's event loop (HTTP, heartbeats) goes before sandboxes.
niceThisThread((workerData as ThreadSetup | undefined)?.nice ?? 0);
const post = (reply: ThreadReply) => port.postMessage(reply);

port.on('message', (request: ThreadRequest) => void handle(request));

async function handle({ id, task, cancel }: ThreadRequest): Promise<void> {
  const flag = new Int32Array(cancel);
  // Lines go to the main thread in batches; the interrupt handler's polls post a batch that waited long enough.
  const logs = new LogBatch((lines) => post({ id, type: 'logs', lines }));
  const result = await runInSandbox(task, {
    log: (stream, line) => logs.add(stream, line),
    cancelled: () => {
      logs.poll();
      return Atomics.load(flag, 0) !== 0;
    },
    started: () => post({ id, type: 'started' }),
  }).catch((err: unknown) => ({ status: 'crashed' as const, message: errorMessage(err) }));
  logs.flush();
  post({ id, type: 'done', result, wasmBytes: await wasmBytes() });
}
