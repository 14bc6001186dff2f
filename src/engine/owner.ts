import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A worker identity: `host:pid:random`, so a worker on the same host can tell a dead owner by its PID. */
export function newOwnerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * True when `owner` ran on this host in a process that no longer exists. Owners on other hosts are
 * never declared dead here: their leases expire instead.
 */
export function isOwnerDead(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
