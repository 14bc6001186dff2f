/**
 * Entry of a sandbox worker thread: runs one {@link SandboxTask} at a time, off the main event loop. Log lines
 * and the start of user code are posted as they happen; cancellation arrives through shared memory, because
 * the thread's own event loop is blocked while the sandbox runs.
 */
import { parentPort } from 'node:worker_threads';
import { runInSandbox, wasmBytes } from './sandbox.js';
import type { ThreadReply, ThreadRequest } from './sandbox-protocol.js';

if (parentPort === null) throw new Error('sandbox-thread must run in a worker thread');
const port = parentPort;
const post = (reply: ThreadReply) => port.postMessage(reply);

port.on('message', (request: ThreadRequest) => void handle(request));

async function handle({ id, task, cancel }: ThreadRequest): Promise<void> {
  const flag = new Int32Array(cancel);
  const result = await runInSandbox(task, {
    log: (stream, line) => post({ id, type: 'log', stream, line }),
    cancelled: () => Atomics.load(flag, 0) !== 0,
    started: () => post({ id, type: 'started' }),
  }).catch((err: unknown) => ({ status: 'crashed' as const, message: err instanceof Error ? err.message : String(err) }));
  post({ id, type: 'done', result, wasmBytes: await wasmBytes() });
}
