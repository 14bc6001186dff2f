import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readStartTicks } from './process-identity.js';
import { registerGroup, registerWorker, unregisterGroup, untilGone } from './command-registry.js';
import { terminateGroup } from './kill-tree.js';

/** The watchdog script (plain JavaScript, shipped next to this module in the sources and in the package). */
const WATCHDOG = fileURLToPath(new URL('./watchdog.cjs', import.meta.url));
/** Marks the commands of this process (`SLUICE_WATCHDOG`), unique per process. */
const WATCHDOG_TOKEN = randomBytes(9).toString('base64url');
/** Grace period of a group the watchdog finds by its mark (its own is unknown): the step default. */
const DEFAULT_GRACE_MS = 5_000;
/** How long a group may take to go after SIGKILL before waiting for it stops. */
const GONE_AFTER_KILL_MS = 2_000;

/** What to start: `file` with `args`, as `spawn` takes them. */
export interface SupervisedCommand {
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL when the group is ended. */
  graceMs: number;
}

/** A command running in a process group of its own that does not outlive this process. */
export interface SupervisedProcess {
  /** The command's main process (the group's leader). */
  readonly child: ChildProcess;
  /**
   * Ends the whole group: SIGTERM now, SIGKILL after the grace period. Resolves once no process of the group
   * runs. Calling it again returns the same promise.
   */
  terminate(): Promise<void>;
}

/** Groups started by this process and not yet gone. */
const running = new Set<SupervisedProcess>();
let watchdog: { child: ChildProcess; pipe: Writable } | undefined;

/**
 * Starts `command` in a new process group (detached) so the whole tree can be signalled at once, and tells this
 * process's watchdog (watchdog.cjs, one per process, started with the first command) about the group: the
 * watchdog ends every group still running when its pipe to this process closes, so the command never outlives
 * this process, however this process ends. The group is also recorded on this machine (command-registry.ts)
 * until it is gone. Throws synchronously where `spawn` does (a NUL byte in an argument).
 */
export function spawnSupervised(command: SupervisedCommand): SupervisedProcess {
  // Started first, so that the group is reported in the same tick as it starts: a worker killed between the two
  // is the only way a command escapes.
  currentWatchdog();
  // The mark lets the watchdog find a group this process had no time to report.
  const env = { ...command.env, SLUICE_WATCHDOG: WATCHDOG_TOKEN };
  const child = spawn(command.file, command.args, { cwd: command.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgid = child.pid;
  let ending: Promise<void> | undefined;
  const handle: SupervisedProcess = {
    child,
    terminate() {
      ending ??= endGroup(pgid, command.graceMs).then(() => {
        running.delete(handle);
        if (pgid === undefined) return;
        tellWatchdog(`- ${pgid}`);
        unregisterGroup(pgid);
      });
      return ending;
    },
  };
  if (pgid !== undefined) {
    running.add(handle);
    tellWatchdog(`+ ${pgid} ${readStartTicks(pgid) ?? ''} ${Math.round(command.graceMs)}`);
    registerGroup(pgid, command.graceMs);
  }
  return handle;
}

/**
 * Ends every command this process started that still runs (SIGTERM, SIGKILL after each one's grace period) and
 * resolves once all of their process groups are gone.
 */
export async function endSupervisedCommands(): Promise<void> {
  await Promise.all([...running].map((p) => p.terminate()));
}

async function endGroup(pgid: number | undefined, graceMs: number): Promise<void> {
  if (pgid === undefined) return;
  await terminateGroup(pgid, graceMs);
  await untilGone(pgid, GONE_AFTER_KILL_MS);
}

function tellWatchdog(line: string): void {
  try {
    currentWatchdog()?.write(`${line}\n`);
  } catch {
    // Without a watchdog the group still ends with its step; only a killed worker's group outlives it.
  }
}

/** The pipe to this process's watchdog, started on first use in a session of its own (so Ctrl-C does not reach it). */
function currentWatchdog(): Writable | undefined {
  if (watchdog) return watchdog.pipe;
  // NODE_OPTIONS may be set for the commands (a loader, a preload script): not for the watchdog.
  const { NODE_OPTIONS: _commandsOnly, ...env } = process.env;
  registerWorker(WATCHDOG_TOKEN);
  const child = spawn(process.execPath, [WATCHDOG, WATCHDOG_TOKEN, String(DEFAULT_GRACE_MS)], { detached: true, env, stdio: ['pipe', 'ignore', 'ignore'] });
  const pipe = child.stdin;
  if (!pipe) return undefined;
  pipe.on('error', () => {});
  // Neither keeps this process alive: the pipe closes when this process exits, which is the watchdog's cue.
  child.unref();
  (pipe as Writable & { unref?: () => void }).unref?.();
  child.once('exit', () => {
    if (watchdog?.child === child) watchdog = undefined;
  });
  watchdog = { child, pipe };
  return pipe;
}
