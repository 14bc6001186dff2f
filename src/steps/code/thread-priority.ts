import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Raises the niceness of the calling thread (not of the process) to `nice`, so that when the CPU is short the
 * scheduler runs the main thread's event loop (HTTP, heartbeats, leases) before sandboxes. Linux only: there a
 * thread has its own id (read from `/proc/thread-self`) and `setpriority` on that id changes that thread alone.
 * Elsewhere, or when it fails, the thread keeps the process's priority (returns false): a sandbox still runs, only
 * without that precedence. Never lowers the niceness: raising it back needs privileges.
 */
export function niceThisThread(nice: number): boolean {
  if (nice <= 0 || process.platform !== 'linux') return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
