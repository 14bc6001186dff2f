/**
 * Helpers for end-to-end tests that run the real `sluice` CLI (bin/sluice.js, which loads dist/) as a
 * subprocess. Every process started here is tracked; call {@link killSpawned} in `afterEach` so a failing
 * test never leaves one running. Build first: `npm run build`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SLUICE_BIN = path.join(REPO_ROOT, 'bin', 'sluice.js');

export interface CliOptions {
  cwd?: string;
  /** Added to (or, with `undefined` values, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  /** The process is SIGKILLed after this long. Default: 60 s. */
  timeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the process was killed because it ran past `timeoutMs`. */
  timedOut: boolean;
  /** Wall time from spawn to exit. */
  ms: number;
}

const live = new Set<ChildProcess>();
/** Process groups started by steps (their PIDs written by the commands), killed in {@link killSpawned}. */
const groups = new Set<number>();

/** The environment of a CLI process: the test's own minus any SLUICE_* setting that could leak in, plus `extra`. */
function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `node bin/sluice.js ...args`; the caller owns the process (it is still killed by {@link killSpawned}). */
export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [SLUICE_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Collects a started process's output and resolves when it exits (killing it after `timeoutMs`). */
export function waitCli(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  const started = Date.now();
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' (not 'exit') so every byte of stdout/stderr has been read.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** Runs the CLI to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return waitCli(startCli(args, options), options.timeoutMs ?? 60_000);
}

/** Runs the CLI with `--json` and parses stdout; throws (with the output) unless it exits 0 with JSON. */
export async function runCliJson<T = any>(args: string[], options: CliOptions = {}): Promise<T> {
  const r = await runCli([...args, '--json'], options);
  if (r.code !== 0) throw new Error(`sluice ${args.join(' ')} --json exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`sluice ${args.join(' ')} --json printed no JSON:\n${r.stdout}\n${r.stderr}`);
  }
}

/** Waits until `child` has exited (and been reaped), or kills it after `timeoutMs`. */
export function exited(child: ChildProcess, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Registers a process group to kill in {@link killSpawned} (a step's command that may outlive a killed CLI). */
export function trackGroup(pgid: number): void {
  if (Number.isInteger(pgid) && pgid > 1) groups.add(pgid);
}

/** Reads PIDs written one per line into `file` and tracks each as a process group. */
export function trackGroupsFrom(file: string): number[] {
  if (!existsSync(file)) return [];
  const pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  pids.forEach(trackGroup);
  return pids;
}

/** SIGKILLs every CLI process still running and every tracked process group, by PID. */
export async function killSpawned(): Promise<void> {
  const waiting: Promise<unknown>[] = [];
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      waiting.push(new Promise((r) => child.once('exit', r)));
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  groups.clear();
  await Promise.race([Promise.all(waiting), sleep(5_000)]);
}

/** Polls `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a process is still running; a zombie (finished, not yet reaped by a non-reaping init) counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return existsSync('/proc/self/stat') ? false : true;
  }
}

/** A temp folder removed by the returned cleanup. */
export function tempDir(prefix = 'sluice-e2e-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Lines in a marker file (0 when it does not exist). */
export function countLines(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
}

/** The step statuses of a `status --json` document, by name. */
export function stepStatuses(status: { steps: Array<{ name: string; status: string }> }): Record<string, string> {
  return Object.fromEntries(status.steps.map((s) => [s.name, s.status]));
}

/** A shell-quoted string for `/bin/sh -c`. */
export function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
