import { availableParallelism } from 'node:os';
import { parseDuration } from '../../core/duration.js';
import { SluiceError, errorMessage } from '../../core/errors.js';

/** How the process's pool of `code` sandboxes is set up (engine option `codeSandbox`). */
export interface CodeSandboxOptions {
  /** Sandboxes running at once, one process each. Default: env `SLUICE_CODE_WORKERS`, else min(4, cores). */
  size?: number;
  /**
   * How long an idle sandbox process is kept for the next step before it exits, as a duration (`30s`, `2m`) or
   * milliseconds; 0 ends each process after its step. Default: env `SLUICE_CODE_IDLE_TIMEOUT`, else 30 s.
   */
  idleTimeout?: string | number;
  /**
   * Niceness (0-19) of sandbox processes: where the CPU is not shared by session first (cgroups, other systems),
   * the event loop serving HTTP, heartbeats and other runs goes first and sandboxes take what is left; 0 runs them
   * at the engine's own priority. Default: env `SLUICE_CODE_NICE`, else 10.
   */
  nice?: number;
}

/** {@link CodeSandboxOptions} checked and with defaults applied. */
export interface SandboxPoolSettings {
  size: number;
  idleMs: number;
  nice: number;
}

const DEFAULT_IDLE_MS = 30_000;
const DEFAULT_NICE = 10;
const MAX_NICE = 19;

/**
 * The pool's settings from the environment (`SLUICE_CODE_WORKERS`, `SLUICE_CODE_IDLE_TIMEOUT`, `SLUICE_CODE_NICE`),
 * else the defaults. A bad value throws `VALIDATION_FAILED` naming the variable and what it takes.
 */
export function sandboxPoolSettings(env: NodeJS.ProcessEnv = process.env): SandboxPoolSettings {
  return {
    size: sizeFromEnv(env),
    idleMs: checkedIdle(numberFromEnv(env, 'SLUICE_CODE_IDLE_TIMEOUT') ?? DEFAULT_IDLE_MS, 'SLUICE_CODE_IDLE_TIMEOUT'),
    nice: checkedNice(numberFromEnv(env, 'SLUICE_CODE_NICE') ?? DEFAULT_NICE, 'SLUICE_CODE_NICE'),
  };
}

/** The settings `options` gives, checked; what it leaves out is absent (unchanged). */
export function checkedSandboxOptions(options: CodeSandboxOptions): Partial<SandboxPoolSettings> {
  if (typeof options !== 'object' || options === null) throw invalid('codeSandbox', 'an object ({ size, idleTimeout, nice })', options);
  const known = new Set(['size', 'idleTimeout', 'nice']);
  const unknown = Object.keys(options).find((key) => !known.has(key));
  if (unknown !== undefined) throw new SluiceError('VALIDATION_FAILED', `codeSandbox.${unknown} is not an option (known: size, idleTimeout, nice)`);
  return {
    ...(options.size !== undefined && { size: checkedSize(options.size, 'codeSandbox.size') }),
    ...(options.idleTimeout !== undefined && { idleMs: checkedIdle(options.idleTimeout, 'codeSandbox.idleTimeout') }),
    ...(options.nice !== undefined && { nice: checkedNice(options.nice, 'codeSandbox.nice') }),
  };
}

/** The pool's size from `SLUICE_CODE_WORKERS`, else min(4, cores). */
export function defaultPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  return sizeFromEnv(env);
}

function sizeFromEnv(env: NodeJS.ProcessEnv): number {
  const configured = numberFromEnv(env, 'SLUICE_CODE_WORKERS');
  return configured === undefined ? Math.max(1, Math.min(4, availableParallelism())) : checkedSize(configured, 'SLUICE_CODE_WORKERS');
}

/** `size` if it is a positive integer, else `VALIDATION_FAILED` naming `name`. */
export function checkedSize(size: unknown, name: string): number {
  if (typeof size === 'number' && Number.isInteger(size) && size >= 1) return size;
  throw invalid(name, 'a positive integer (the number of code sandbox processes)', size);
}

function checkedIdle(value: unknown, name: string): number {
  if (typeof value !== 'string' && typeof value !== 'number') throw invalid(name, 'a duration such as 30s, or a number of milliseconds', value);
  try {
    return parseDuration(value);
  } catch (err) {
    throw new SluiceError('VALIDATION_FAILED', `${name}: ${errorMessage(err)}`);
  }
}

function checkedNice(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_NICE) return value;
  throw invalid(name, `an integer from 0 to ${MAX_NICE} (the niceness of code sandbox processes)`, value);
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** A variable's number; text that is no number stays as it is, so the check names it. */
function numberFromEnv(env: NodeJS.ProcessEnv, name: string): number | string | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

function invalid(name: string, expected: string, got: unknown): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `${name} must be ${expected}, got ${JSON.stringify(typeof got === 'string' ? got : String(got))}`);
}
