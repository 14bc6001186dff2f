/**
 * Entry of a sandbox process: runs the tasks the engine sends, one at a time, in a worker thread of its own
 * (thread-pool.ts), so its main thread stays free to relay console lines, take cancels and notice the engine is
 * gone. It starts in a session of its own: on Linux with autogrouping the scheduler then shares the CPU between
 * the engine and its sandboxes as two groups, so sandboxes at their limits cannot take the engine's share, and
 * what they allocate and free happens in another address space.
 */
import { setPriority } from 'node:os';
import { errorMessage } from '../../core/errors.js';
import type { SandboxLogLine } from './log-batch.js';
import type { ProcessReply, ProcessRequest, ProcessSetup } from './sandbox-protocol.js';
import { SandboxThreadPool } from './thread-pool.js';
import type { LogStream } from '../step-type.js';

if (process.send === undefined) throw new Error('sandbox-process must be started with an IPC channel');
const setup = JSON.parse(process.argv[2] ?? '{}') as Partial<ProcessSetup>;
lowerPriority(setup.nice ?? 0);

const send = (reply: ProcessReply) => process.send!(reply);
// The engine exited or was killed: nothing is left to report to, and no sandbox may outlive it.
process.on('disconnect', () => process.exit(0));

// The thread is replaced after a task that grew its memory or overran, and ends only with this process otherwise.
const threads = new SandboxThreadPool({ size: 1, idleMs: 2 ** 31 - 1, ...(setup.graceMs !== undefined && { graceMs: setup.graceMs }) });
const running = new Map<number, AbortController>();

process.on('message', (request: ProcessRequest) => {
  if (request.type === 'cancel') running.get(request.id)?.abort();
  else void run(request.id, request.task);
});

async function run(id: number, task: Extract<ProcessRequest, { type: 'run' }>['task']): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  const lines = new LineRelay((batch) => send({ id, type: 'logs', lines: batch }));
  const result = await threads
    .run(task, { signal: controller.signal, log: (stream, line) => lines.add(stream, line) })
    .catch((err: unknown) => ({ status: 'crashed' as const, message: errorMessage(err) }));
  running.delete(id);
  lines.flush();
  send({ id, type: 'done', result });
}

/** Lines from the thread arrive in batches; each batch goes on at once, as one message. */
class LineRelay {
  private lines: SandboxLogLine[] = [];

  constructor(private readonly post: (lines: SandboxLogLine[]) => void) {}

  add(stream: LogStream, line: string): void {
    if (this.lines.length === 0) queueMicrotask(() => this.flush());
    this.lines.push({ stream, line });
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const lines = this.lines;
    this.lines = [];
    this.post(lines);
  }
}

/**
 * Niceness `nice` for this process; its threads, started later, inherit it. Where the kernel does not group the
 * CPU by session (cgroups, other systems), this is what lets the engine's event loop go first. Best effort.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    setPriority(nice);
  } catch {
    // Not supported here: the sandbox runs at the engine's priority.
  }
}
