/**
 * The `sluice` CLI run in the test process: the same program (`buildProgram` of src/cli/main.ts), the same
 * parsing, exit codes and output as the binary, without paying for a Node.js start and a module load per command
 * (seconds each on a loaded machine). For what only a real process proves (the binary's own exit, signals,
 * kill -9, several processes at once) use ./cli.ts.
 *
 * The command sees `cwd` as its working directory and `env` in its environment (minus every inherited SLUICE_*
 * setting, as for a subprocess); its stdout and stderr are collected. Calls run one at a time, because all of
 * that is process-wide state.
 */
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import type { CliOptions, CliResult } from './cli.js';

type BuildProgram = () => Command;

let loading: Promise<BuildProgram> | null = null;

/**
 * Imports src/cli/main.ts once. Being the program's entry point, it parses `process.argv` as soon as it loads:
 * it is handed `--version` (its output dropped) so that first parse does nothing else.
 */
function loadProgram(): Promise<BuildProgram> {
  loading ??= (async () => {
    const argv = process.argv;
    const write = process.stdout.write;
    process.argv = [argv[0] ?? process.execPath, 'sluice', '--version'];
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      return (await import('../../src/cli/main.js')).buildProgram;
    } finally {
      process.argv = argv;
      process.stdout.write = write;
      process.exitCode = undefined;
    }
  })();
  return loading;
}

/** Commander's own exits that are not usage errors, as in src/cli/main.ts. */
const CLEAN_EXITS = new Set(['commander.helpDisplayed', 'commander.version']);

let queue: Promise<unknown> = Promise.resolve();

/** Runs `sluice ...args` in this process and resolves with its exit code and output. */
export function runCliInProcess(args: string[], options: Omit<CliOptions, 'timeoutMs'> = {}): Promise<CliResult> {
  const result = queue.then(() => runOne(args, options));
  queue = result.catch(() => undefined);
  return result;
}

/** Runs `sluice ...args --json` in this process and parses stdout; throws (with the output) unless it exits 0 with JSON. */
export async function runCliJsonInProcess<T = any>(args: string[], options: Omit<CliOptions, 'timeoutMs'> = {}): Promise<T> {
  const r = await runCliInProcess([...args, '--json'], options);
  if (r.code !== 0) throw new Error(`sluice ${args.join(' ')} --json exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`sluice ${args.join(' ')} --json printed no JSON:\n${r.stdout}\n${r.stderr}`);
  }
}

async function runOne(args: string[], options: Omit<CliOptions, 'timeoutMs'>): Promise<CliResult> {
  const buildProgram = await loadProgram();
  const started = Date.now();
  let stdout = '';
  let stderr = '';
  const restore = enter(options, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
  });
  let code: number;
  try {
    process.exitCode = undefined;
    try {
      await buildProgram().parseAsync(['node', 'sluice', ...args]);
      code = Number(process.exitCode ?? 0);
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      code = CLEAN_EXITS.has(err.code) ? 0 : 2;
    }
  } finally {
    process.exitCode = undefined;
    restore();
  }
  return { code, signal: null, stdout, stderr, timedOut: false, ms: Date.now() - started };
}

/** Switches the working directory, environment and output to the command's; returns what switches them back. */
function enter(options: Omit<CliOptions, 'timeoutMs'>, sink: { stdout(s: string): void; stderr(s: string): void }): () => void {
  const cwd = process.cwd();
  const env = { ...process.env };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const k of Object.keys(process.env)) if (k.startsWith('SLUICE_')) delete process.env[k];
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (options.cwd) process.chdir(options.cwd);
  process.stdout.write = collect(sink.stdout);
  process.stderr.write = collect(sink.stderr);
  return () => {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    process.chdir(cwd);
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
  };
}

function collect(sink: (s: string) => void): typeof process.stdout.write {
  return ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }) as typeof process.stdout.write;
}
