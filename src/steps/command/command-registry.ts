import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { currentProcess, livenessOf, readStartTicks, type ProcessIdentity } from './process-identity.js';
import { signalGroup, terminateGroup } from './kill-tree.js';

/**
 * The process groups of `command` steps started on this machine, one small file per group, so that a worker
 * that takes over the attempt of a dead worker can first end what that worker left running (its supervisor
 * does so too, but within a grace period, and a resumed run must not start a second copy meanwhile).
 *
 * Files live in `$TMPDIR/sluice-<uid>/commands/<pgid>.json`, written when a group starts and removed once it is
 * gone. Default folder: from `os.tmpdir()`. Each is written whole or not at all (see {@link writeRecord}).
 */
interface GroupEntry {
  /** The worker process that started the group. */
  worker: ProcessIdentity;
  /** The group's id, which is also its leader's (the supervisor's) PID. */
  pgid: number;
  /** The leader's start time, so that a reused PID is never mistaken for the group. */
  leaderStartTicks: string;
  /** The step's `kill_grace`. */
  graceMs: number;
}

/** Grace period of a group found only by its mark: the step default (its own `kill_grace` is not known). */
const DEFAULT_GRACE_MS = 5_000;
/** How long a dead worker's group may take to go after SIGKILL before it is left to the next round. */
const GONE_AFTER_KILL_MS = 2_000;
const POLL_MS = 25;

function registryDir(): string {
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
  return path.join(tmpdir(), `sluice-${user}`, 'commands');
}

/** Records a group this process started; best effort (an unwritable folder only loses the early clean-up). */
export function registerGroup(pgid: number, graceMs: number): void {
  const entry: GroupEntry = { worker: currentProcess(), pgid, leaderStartTicks: readStartTicks(pgid) ?? '', graceMs };
  try {
    const dir = registryDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeRecord(path.join(dir, `${pgid}.json`), JSON.stringify(entry));
  } catch {
    // Without the file the group still ends with its supervisor, only not before a resumed run may start.
  }
}

/**
 * Records that this process marks its commands with `SLUICE_WATCHDOG=token`, before it starts any: a group it
 * started but had no time to record is still found by that mark once this process is dead. The record goes when
 * this process exits normally.
 */
export function registerWorker(token: string): void {
  const file = path.join(registryDir(), `worker-${token}.json`);
  try {
    mkdirSync(registryDir(), { recursive: true, mode: 0o700 });
    writeRecord(file, JSON.stringify({ worker: currentProcess(), token }));
    process.once('exit', () => removeFile(file));
  } catch {
    // Without the file the watchdog still ends such a group, only not before a resumed run may start.
  }
}

/**
 * Writes a record under a temporary name, then renames it into place. A process killed between creating the file
 * and filling it would otherwise leave an empty record that no one can read, and so no one removes; this way it
 * leaves only the temporary file (`<record>.<pid>.tmp`), which the next {@link endOrphanedCommands} removes once that
 * process is gone.
 */
function writeRecord(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, file);
  } catch (err) {
    // A full disk: what was written of the temporary file goes too, not only once this process is gone.
    removeFile(temp);
    throw err;
  }
}

/** Forgets a group of this process once it is gone. */
export function unregisterGroup(pgid: number): void {
  const file = path.join(registryDir(), `${pgid}.json`);
  const entry = readEntry(file);
  if (entry && entry.worker.pid === process.pid && entry.worker.startTicks === currentProcess().startTicks) removeFile(file);
}

/**
 * Ends the process groups that `command` steps of dead workers of this machine left behind, and resolves once
 * they are gone: the group's supervisor gets its `kill_grace` to end it, then the group gets SIGKILL. Groups of
 * live workers and groups that cannot be judged (another boot or container) are left alone.
 */
export function endOrphanedCommands(): Promise<void> {
  // Reapers tick every second and a group may take its whole grace period to go: one pass at a time.
  ending ??= endAll().finally(() => (ending = undefined));
  return ending;
}

let ending: Promise<void> | undefined;

async function endAll(): Promise<void> {
  const dir = registryDir();
  if (!isPrivate(path.dirname(dir)) || !isPrivate(dir)) return;
  let all: string[];
  try {
    all = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of all.filter((n) => n.endsWith('.tmp'))) if (!writerRuns(name)) removeFile(path.join(dir, name));
  const names = all.filter((n) => n.endsWith('.json'));
  const workers = names.filter((n) => n.startsWith('worker-'));
  const groups = names.filter((n) => !n.startsWith('worker-'));
  await Promise.all(groups.map((name) => endIfOrphaned(path.join(dir, name))));
  await Promise.all(workers.map((name) => endMarkedIfOrphaned(path.join(dir, name))));
}

/** Whether the process writing the temporary record `name` (`<record>.<pid>.tmp`) still runs (a zombie does not). */
function writerRuns(name: string): boolean {
  const pid = Number(name.split('.').at(-2));
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = readProcStat(String(pid))?.state;
  return state !== 'Z' && state !== 'X';
}

/** Waits until no process marked by a dead worker runs (its watchdog ends them), then SIGKILLs what is left. */
async function endMarkedIfOrphaned(file: string): Promise<void> {
  let entry: { worker: ProcessIdentity; token: string };
  try {
    entry = JSON.parse(readFileSync(file, 'utf8')) as typeof entry;
  } catch {
    return;
  }
  const worker = livenessOf(entry.worker);
  if (worker === 'alive') return;
  if (worker === 'dead') {
    const deadline = Date.now() + DEFAULT_GRACE_MS + GONE_AFTER_KILL_MS;
    while (markedGroups(entry.token).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
    for (const pgid of markedGroups(entry.token)) signalGroup(pgid, 'SIGKILL');
  } else if (entry.worker.bootId === '' || entry.worker.bootId === currentProcess().bootId) {
    return;
  }
  removeFile(file);
}

/** Process groups of running (not zombie) processes whose environment carries `SLUICE_WATCHDOG=token`. */
function markedGroups(token: string): number[] {
  const mark = `\0SLUICE_WATCHDOG=${token}\0`;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const groups = new Set<number>();
  for (const pid of pids) {
    try {
      if (!`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(mark)) continue;
      const stat = readProcStat(pid);
      if (stat && stat.state !== 'Z' && stat.state !== 'X' && stat.pgrp > 1) groups.add(stat.pgrp);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return [...groups];
}

/**
 * Entries name process groups to kill: they are read only from a real folder of this user that no one else may
 * write to (the shared temp folder lets anyone create a folder of that name first).
 */
function isPrivate(dir: string): boolean {
  try {
    const info = lstatSync(dir);
    const own = typeof process.getuid !== 'function' || info.uid === process.getuid();
    return info.isDirectory() && own && (info.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

async function endIfOrphaned(file: string): Promise<void> {
  const entry = readEntry(file);
  if (!entry) return;
  const worker = livenessOf(entry.worker);
  if (worker === 'alive') return;
  // Another boot: everything it ran is gone. Another PID namespace: not ours to judge.
  if (worker === 'unsure') {
    if (entry.worker.bootId !== '' && entry.worker.bootId !== currentProcess().bootId) removeFile(file);
    return;
  }
  if (isOurGroup(entry)) await endGroup(entry);
  removeFile(file);
}

/** Whether `pgid` still names the group that was recorded (PIDs of a live group are never reused). */
function isOurGroup(entry: GroupEntry): boolean {
  const leader = readStartTicks(entry.pgid);
  if (leader !== undefined) return leader === entry.leaderStartTicks;
  return signalGroup(entry.pgid, 0);
}

/** The supervisor ends its group within the grace period; a group without one is terminated here. */
async function endGroup(entry: GroupEntry): Promise<void> {
  const supervised = readStartTicks(entry.pgid) === entry.leaderStartTicks;
  if (supervised) await untilGone(entry.pgid, entry.graceMs + GONE_AFTER_KILL_MS);
  else await terminateGroup(entry.pgid, entry.graceMs);
  if (signalGroup(entry.pgid, 0)) signalGroup(entry.pgid, 'SIGKILL');
  await untilGone(entry.pgid, GONE_AFTER_KILL_MS);
}

/** Resolves once group `pgid` has no running process left, or after `timeoutMs`. */
export async function untilGone(pgid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (groupRuns(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
}

/**
 * Whether a process of group `pgid` still runs. A zombie has finished running but still answers signals until
 * its parent reaps it, and the parent of a dead worker's processes is an init that may never reap: so when the
 * group answers, /proc tells whether any member is more than a zombie.
 */
function groupRuns(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true;
  }
  return pids.some((pid) => {
    const stat = readProcStat(pid);
    return stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X';
  });
}

function readProcStat(pid: string): { state: string; pgrp: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

function readEntry(file: string): GroupEntry | undefined {
  try {
    const entry = JSON.parse(readFileSync(file, 'utf8')) as GroupEntry;
    return Number.isInteger(entry.pgid) && entry.pgid > 1 && typeof entry.worker?.pid === 'number' ? entry : undefined;
  } catch {
    return undefined;
  }
}

function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already removed by another worker.
  }
}
