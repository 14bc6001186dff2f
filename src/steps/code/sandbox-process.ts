/**
 * Entry of a sandbox process: runs the tasks the engine sends, one at a time, on its main thread. Console lines go
 * back in batches (log-batch.ts) and the start of user code as it happens: a message sent while the sandbox blocks
 * this thread still leaves at once. The process starts in a session of its own: on Linux with autogrouping the
 * scheduler then shares the CPU between the engine and its sandboxes as two groups, so sandboxes at their limits
 * cannot take the engine's share; and what they allocate and free happens in another address space.
 *
 * A cancel is a kill: the engine ends the process. When the engine is gone (its channel closed, or this process
 * was handed to another parent while a task runs), the process exits.
 */
import { setPriority } from 'node:os';
import { errorMessage } from '../../core/errors.js';
import { LogBatch } from './log-batch.js';
import { runInSandbox, wasmBytes, type SandboxTask } from './sandbox.js';
import type { ProcessReply, ProcessRequest, ProcessSetup } from './sandbox-protocol.js';

if (process.send === undefined) throw new Error('sandbox-process must be started with an IPC channel');
const setup = JSON.parse(process.argv[2] ?? '{}') as Partial<ProcessSetup>;
lowerPriority(setup.nice ?? 0);

const send = (reply: ProcessReply) => process.send!(reply);
const engine = process.ppid;
/** Whether the engine that started this process is gone; read by the interrupt handler while a task runs. */
const engineGone = () => process.ppid !== engine;

process.on('disconnect', () => process.exit(0));
process.on('message', (request: ProcessRequest) => void run(request.id, request.task));

async function run(id: number, task: SandboxTask): Promise<void> {
  // Lines go to the engine in batches; the interrupt handler's polls post a batch that waited long enough.
  const logs = new LogBatch((lines) => send({ id, type: 'logs', lines }));
  const result = await runInSandbox(task, {
    log: (stream, line) => logs.add(stream, line),
    cancelled: () => {
      logs.poll();
      return engineGone();
    },
    started: () => send({ id, type: 'started' }),
  }).catch((err: unknown) => ({ status: 'crashed' as const, message: errorMessage(err) }));
  if (engineGone()) process.exit(0);
  logs.flush();
  send({ id, type: 'done', result, wasmBytes: await wasmBytes() });
}

/**
 * Niceness `nice` for this process. Where the kernel does not group the CPU by session (cgroups, other systems),
 * this is what lets the engine's event loop go first. Best effort: raising niceness needs no privilege.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    setPriority(nice);
  } catch {
    // Not supported here: the sandbox runs at the engine's priority.
  }
}
