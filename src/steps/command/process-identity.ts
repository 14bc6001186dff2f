import { readFileSync, readlinkSync } from 'node:fs';

/**
 * A process, named so that it stays unique for its whole lifetime on one machine: the kernel's boot id, the PID
 * namespace (containers sharing a kernel have their own PIDs) and the PID with its start time (a PID is reused
 * only by a process started later). Any part this platform cannot read (no /proc) is `''`.
 */
export interface ProcessIdentity {
  /** /proc/sys/kernel/random/boot_id: changes at every boot. */
  bootId: string;
  /** Inode of /proc/self/ns/pid: the PID namespace the PID belongs to. */
  pidNamespace: string;
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks from boot to the start of the process. */
  startTicks: string;
}

/** What can be said about a process from this one: `unsure` when it ran elsewhere or /proc cannot tell. */
export type Liveness = 'alive' | 'dead' | 'unsure';

let own: ProcessIdentity | undefined;
let kernel: { bootId: string; pidNamespace: string } | undefined;

/** This process's identity (read once). */
export function currentProcess(): ProcessIdentity {
  own ??= { ...localKernel(), pid: process.pid, startTicks: readStartTicks(process.pid) ?? '' };
  return own;
}

/**
 * Whether the process `id` still runs, judged from this one. Only a process of this boot and PID namespace can
 * be judged (different boot or namespace: another machine or container, or this machine before a reboot, which
 * cannot be told apart): it is dead when its PID is gone, is a zombie, or now belongs to a process started at
 * another time.
 */
export function livenessOf(id: ProcessIdentity): Liveness {
  const here = localKernel();
  if (here.bootId === '' || here.pidNamespace === '' || id.startTicks === '' || !Number.isInteger(id.pid) || id.pid <= 0) return 'unsure';
  if (id.bootId !== here.bootId || id.pidNamespace !== here.pidNamespace) return 'unsure';
  const stat = readStat(id.pid);
  if (stat === 'gone') return 'dead';
  if (stat === undefined) return 'unsure';
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  return stat.startTicks === id.startTicks ? 'alive' : 'dead';
}

/** The start time of `pid` (field 22 of /proc/PID/stat), undefined when it cannot be read. */
export function readStartTicks(pid: number): string | undefined {
  const stat = readStat(pid);
  return stat === 'gone' ? undefined : stat?.startTicks;
}

function localKernel(): { bootId: string; pidNamespace: string } {
  kernel ??= { bootId: readBootId(), pidNamespace: readPidNamespace() };
  return kernel;
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function readPidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/** `gone` when no process has this PID; undefined when /proc cannot say (unreadable, unexpected format). */
function readStat(pid: number): { state: string; startTicks: string } | 'gone' | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && localKernel().bootId !== '' ? 'gone' : undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  if (state === undefined || startTicks === undefined || !/^\d+$/.test(startTicks)) return undefined;
  return { state, startTicks };
}
