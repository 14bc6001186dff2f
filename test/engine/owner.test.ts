/**
 * Worker liveness on real processes: an owner id names its process by boot id, PID namespace, PID and start
 * time, so a reused PID or a worker of another container with the same host name is never mistaken.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { isOwnerDead, newOwnerId } from '../../src/engine/owner.js';
import { currentProcess, readStartTicks } from '../../src/steps/command/process-identity.js';

const hasProc = existsSync('/proc/sys/kernel/random/boot_id') && existsSync('/proc/self/ns/pid');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** A process that ran and is gone (exited and reaped), with the start time it had. */
async function goneProcess(): Promise<{ pid: number; startTicks: string }> {
  const child = sleeper();
  const pid = child.pid!;
  const startTicks = readStartTicks(pid)!;
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  return { pid, startTicks };
}

function owner(parts: { host?: string; pid: number; bootId?: string; pidNamespace?: string; startTicks: string }): string {
  const self = currentProcess();
  return [parts.host ?? hostname(), parts.pid, 'a1b2c3', parts.bootId ?? self.bootId, parts.pidNamespace ?? self.pidNamespace, parts.startTicks].join(':');
}

describe.runIf(hasProc)('worker liveness (owner ids)', () => {
  it('this process is alive', () => {
    const id = newOwnerId();
    expect(id.split(':')).toHaveLength(6);
    expect(id.startsWith(`${hostname()}:${process.pid}:`)).toBe(true);
    expect(isOwnerDead(id)).toBe(false);
  });

  it('a live process with the same PID and start time is alive', () => {
    const child = sleeper();
    expect(isOwnerDead(owner({ pid: child.pid!, startTicks: readStartTicks(child.pid!)! }))).toBe(false);
  });

  it('a PID that now belongs to a process started at another time is dead (the PID was reused)', () => {
    const child = sleeper();
    const startTicks = String(Number(readStartTicks(child.pid!)) + 1);
    expect(isOwnerDead(owner({ pid: child.pid!, startTicks }))).toBe(true);
  });

  it('a process whose PID is gone is dead', async () => {
    expect(isOwnerDead(owner(await goneProcess()))).toBe(true);
  });

  it('the same host name with another boot id is not judged (another machine, or before a reboot): leases expire instead', async () => {
    const gone = await goneProcess();
    expect(isOwnerDead(owner({ ...gone, bootId: '00000000-0000-4000-8000-000000000000' }))).toBe(false);
  });

  it('the same host name and boot in another PID namespace (another container) is not judged', async () => {
    const gone = await goneProcess();
    expect(isOwnerDead(owner({ ...gone, pidNamespace: '1' }))).toBe(false);
  });

  it('an owner id of the previous release (host:pid:random) is read, and left to lease expiry', async () => {
    const gone = await goneProcess();
    expect(isOwnerDead(`${hostname()}:${gone.pid}:a1b2c3`)).toBe(false);
    expect(isOwnerDead(`${hostname()}:${process.pid}:a1b2c3`)).toBe(false);
  });

  it('an owner id with parts this platform could not read is left to lease expiry', async () => {
    const gone = await goneProcess();
    expect(isOwnerDead(owner({ ...gone, startTicks: '' }))).toBe(false);
    expect(isOwnerDead('not-an-owner')).toBe(false);
  });
});
