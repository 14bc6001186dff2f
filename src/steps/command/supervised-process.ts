import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registerGroup, unregisterGroup, untilGone } from './command-registry.js';
import { terminateGroup } from './kill-tree.js';

/** The supervisor script (plain JavaScript, shipped next to this module in the sources and in the package). */
const SUPERVISOR = fileURLToPath(new URL('./supervisor.cjs', import.meta.url));
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

/** How the command ended, as its supervisor saw it; `error` when it could not be started. */
export type CommandOutcome = { code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException };

/** A command running under its supervisor, in a process group of its own. */
export interface SupervisedProcess {
  /** The supervisor: its stdout and stderr are the command's, and it exits after the command. */
  readonly child: ChildProcess;
  /** The command's end as reported by the supervisor; read it once `child` emitted 'close'. */
  outcome(): CommandOutcome | undefined;
  /**
   * Ends the whole group: SIGTERM now, SIGKILL after the grace period. Resolves once no process of the group
   * runs. Calling it again returns the same promise.
   */
  terminate(): Promise<void>;
}

/** Groups started by this process and not yet gone. */
const running = new Set<SupervisedProcess>();

/**
 * Starts `command` under a supervisor (supervisor.cjs) in a new process group: the group is ended when the
 * supervisor's pipe to this process closes, so the command never outlives this process, however this process
 * ends. The group is also recorded on this machine (command-registry.ts) until it is gone. Throws synchronously
 * where `spawn` does (a NUL byte in an argument).
 */
export function spawnSupervised(command: SupervisedCommand): SupervisedProcess {
  const child = spawn(process.execPath, [SUPERVISOR, String(Math.round(command.graceMs)), command.file, ...command.args], {
    cwd: command.cwd,
    env: supervisorEnv(command.env),
    detached: true,
    // stdin: the pipe whose end tells the supervisor this process is gone; fd 3: its report.
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const report = collectReport(child);
  let ending: Promise<void> | undefined;
  const pgid = child.pid;
  const handle: SupervisedProcess = {
    child,
    outcome: () => report.outcome(),
    terminate() {
      ending ??= endGroup(pgid, command.graceMs).then(() => {
        running.delete(handle);
        if (pgid !== undefined) unregisterGroup(pgid);
        child.stdin?.destroy();
      });
      return ending;
    },
  };
  child.stdin?.on('error', () => {});
  if (pgid !== undefined) {
    running.add(handle);
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

/** NODE_OPTIONS is meant for the command, not for the supervisor: it travels under another name. */
function supervisorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: nodeOptions, ...rest } = env;
  return nodeOptions === undefined ? rest : { ...rest, SLUICE_SUPERVISED_NODE_OPTIONS: nodeOptions };
}

/** Reads the supervisor's one-line JSON report from fd 3. */
function collectReport(child: ChildProcess): { outcome(): CommandOutcome | undefined } {
  let text = '';
  const pipe = child.stdio[3] as NodeJS.ReadableStream | null | undefined;
  pipe?.setEncoding('utf8');
  pipe?.on('data', (chunk: string) => (text += chunk));
  pipe?.on('error', () => {});
  return {
    outcome() {
      const line = text.split('\n').find((l) => l.trim() !== '');
      if (line === undefined) return undefined;
      try {
        const parsed = JSON.parse(line) as { exit?: { code: number | null; signal: NodeJS.Signals | null }; error?: { code: string | null; message: string } };
        if (parsed.exit) return parsed.exit;
        if (parsed.error) return { error: Object.assign(new Error(parsed.error.message), parsed.error.code === null ? {} : { code: parsed.error.code }) };
      } catch {
        // A torn report: fall back to the supervisor's own exit status.
      }
      return undefined;
    },
  };
}
