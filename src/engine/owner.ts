import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { currentProcess, livenessOf } from '../steps/command/process-identity.js';

/**
 * A worker identity: `host:pid:random:bootId:pidNamespace:startTicks` (see {@link ProcessIdentity}). Host and
 * PID come first so that the previous release, which reads only those, still parses it. Parts this platform
 * cannot read are empty, and such an owner is judged by lease expiry only.
 */
export function newOwnerId(): string {
  const self = currentProcess();
  return [hostname(), self.pid, randomBytes(3).toString('hex'), self.bootId, self.pidNamespace, self.startTicks].join(':');
}

/**
 * True when `owner` is a worker process of this machine (same boot, same PID namespace) that no longer runs:
 * its PID is gone or now belongs to a process started at another time. Whenever that cannot be known (another
 * machine or container, a boot before the last reboot, no /proc, an owner id of the previous release, which
 * named only host and PID), it is not declared dead here: its leases expire instead.
 */
export function isOwnerDead(owner: string): boolean {
  const parts = owner.split(':');
  // host:pid:random is the previous release's form: a host name and a PID alone cannot tell a live worker in
  // another container (same host name, other PIDs) or a reused PID from a dead worker.
  if (parts.length !== 6) return false;
  const [, pid, , bootId, pidNamespace, startTicks] = parts as [string, string, string, string, string, string];
  return livenessOf({ bootId, pidNamespace, pid: Number(pid), startTicks }) === 'dead';
}
