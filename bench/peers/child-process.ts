import { spawn, type ChildProcess } from 'node:child_process';
import { withTimeout } from './types.js';

/** A peer run in a child process of its own (a library that is one per process, or a second core's worth). */
export interface PeerChild {
  proc: ChildProcess;
  /** What the child printed on stderr (the first 8,000 characters), for error messages. */
  stderr: string;
  exited: Promise<void>;
  /** Names the peer in error messages, e.g. "DBOS child". */
  label: string;
}

/** Starts `script` (TypeScript, through tsx) with `args`, an IPC channel and stderr kept. */
export function spawnPeerChild(script: string, args: string[], cwd: string, label: string): PeerChild {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const child: PeerChild = {
    proc,
    stderr: '',
    label,
    exited: new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', () => resolve());
    }),
  };
  proc.stderr?.on('data', (chunk: Buffer) => {
    if (child.stderr.length < 8_000) child.stderr += chunk.toString();
  });
  return child;
}

/** Resolves with the first IPC message of `type`; rejects on an 'error' message or when the child exits first. */
export function waitForMessage<T extends { type?: string }>(child: PeerChild, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: T & { message?: string }) => {
      if (msg.type === type) {
        cleanup();
        resolve(msg);
      } else if (msg.type === 'error') {
        cleanup();
        reject(new Error(`${child.label} failed: ${msg.message ?? ''}\n${child.stderr.trim()}`));
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${child.label} exited (code ${code}) before '${type}'\n${child.stderr.trim()}`));
    };
    const cleanup = () => {
      child.proc.off('message', onMessage);
      child.proc.off('exit', onExit);
    };
    child.proc.on('message', onMessage);
    child.proc.once('exit', onExit);
  });
}

/** Asks the child to stop (a 'stop' message), waits up to 15 s for it to exit, then kills it. */
export async function stopPeerChild(child: PeerChild): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    if (proc.connected) proc.send({ type: 'stop' });
  } catch {
    // The channel is already closed.
  }
  const stopped = await withTimeout(child.exited, 15_000, `${child.label} stop`).then(
    () => true,
    () => false,
  );
  if (!stopped) {
    proc.kill('SIGKILL');
    await withTimeout(child.exited, 5_000, `${child.label} kill`).catch(() => undefined);
  }
}
