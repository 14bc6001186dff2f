/** How often to check whether a process group is gone while waiting out the grace period. */
const POLL_INTERVAL_MS = 50;

/**
 * Sends `signal` to every process in group `pgid` (`0` only probes). Returns false once the group no longer
 * exists. Other failures (EPERM after a member changed user) mean the group still exists.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Terminates a whole process group: SIGTERM now, SIGKILL after `graceMs` if any member is still there.
 * Resolves once the group is gone or SIGKILL was sent.
 *
 * The group is polled rather than SIGKILLed blindly on a timer so the timer does not keep Node alive for the
 * whole grace period and a PGID recycled after the group died is never signalled. Real time is used on
 * purpose: an injected test clock must not postpone killing real processes.
 */
export function terminateGroup(pgid: number, graceMs: number): Promise<void> {
  if (!signalGroup(pgid, 'SIGTERM')) return Promise.resolve();
  // A stopped process only acts on SIGTERM once continued.
  signalGroup(pgid, 'SIGCONT');
  const deadline = Date.now() + graceMs;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const alive = signalGroup(pgid, 0);
      if (alive && Date.now() < deadline) return;
      if (alive) signalGroup(pgid, 'SIGKILL');
      clearInterval(timer);
      resolve();
    }, POLL_INTERVAL_MS);
  });
}
