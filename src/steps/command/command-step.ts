import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { SluiceError, errorMessage } from '../../core/errors.js';
import { templateText, visitStrings, type TemplateSpot } from '../../core/expressions.js';
import type { JsonSchema } from '../../core/model.js';
import type { StepContext, StepType } from '../step-type.js';
import { commandCacheInputs } from './cache-files.js';
import { quoteForShell } from './shell-quote.js';
import { spawnSupervised, type SupervisedProcess } from './supervised-process.js';

/** How a `command` step turns stdout into its output. */
export type CommandOutputMode = 'text' | 'json' | 'none';

/** `with` of a `command` step. */
export interface CommandConfig {
  /**
   * A string runs through `shell -c`; an array is argv, run directly without a shell. Each `${{ }}` value in a
   * string `run` is written as data: outside quotes as one single-quoted word, inside the author's `'...'` or
   * `"..."` escaped for that quote (a here-document, backticks or `${...}` around it are refused). In argv each
   * element is one argument as it is.
   */
  run: string | string[];
  /**
   * Dangerous: `${{ }}` values in a string `run` are pasted unquoted, so the shell interprets them (a value
   * `x; rm -rf ~` runs `rm`). Only for values the pipeline author controls. Default: false.
   */
  shell_unsafe?: boolean;
  /** Shell for a string `run` (a path or a name on PATH that accepts `-c`). Ignored for argv. Default: `/bin/sh`. */
  shell?: string;
  /** Extra environment variables on top of the worker's own and the `SLUICE_*` ones; values are stringified. */
  env?: Record<string, string | number | boolean>;
  /** Working directory, resolved against the pipeline's `baseDir`. Default: `baseDir`. */
  cwd?: string;
  /**
   * `text`: `{ exit_code, stdout }` with the last 8 KiB of stdout, trimmed. `json`: the last non-empty stdout
   * line parsed as JSON. `none`: `{ exit_code }`. Default: `text`.
   */
  output?: CommandOutputMode;
  /** Time between SIGTERM and SIGKILL when the step is aborted; a number is milliseconds. Default: 5 s. */
  kill_grace?: string | number;
}

const DEFAULT_SHELL = '/bin/sh';
const DEFAULT_KILL_GRACE_MS = 5_000;
const STDOUT_TAIL_BYTES = 8 * 1024;
const STDERR_TAIL_LINES = 20;
/** Stderr quoted in an error message is cut to its last this many characters. */
const STDERR_TAIL_CHARS = 4 * 1024;
/** Each stderr line kept for the error message is cut to this length. */
const STDERR_LINE_CHARS = STDERR_TAIL_CHARS;
/** A line longer than this is logged in pieces so a process that never prints a newline cannot exhaust memory. */
const MAX_LINE_CHARS = 1024 * 1024;
const OUTPUT_MODES: readonly CommandOutputMode[] = ['text', 'json', 'none'];

const commandConfigSchema: JsonSchema = {
  type: 'object',
  properties: {
    run: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', items: { type: 'string' }, minItems: 1 },
      ],
    },
    shell: { type: 'string', minLength: 1 },
    shell_unsafe: { type: 'boolean' },
    env: {
      type: 'object',
      additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
    },
    cwd: { type: 'string' },
    output: { enum: OUTPUT_MODES },
    kill_grace: { anyOf: [{ type: 'string' }, { type: 'number', minimum: 0 }] },
  },
  required: ['run'],
  additionalProperties: false,
};

/** Everything needed to start the process, derived from the config before anything runs. */
interface CommandPlan {
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  graceMs: number;
  output: CommandOutputMode;
}

interface CapturedOutput {
  /** Last 8 KiB of stdout, trimmed. */
  stdoutTail: string;
  lastStdoutLine: string | undefined;
  /** Last non-empty stderr lines, oldest first. */
  stderrTail: string[];
}

interface ProcessResult extends CapturedOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Creates the `command` step type: runs an external process.
 *
 * The process gets the worker's environment without its `SLUICE_SECRET_*` variables, plus `SLUICE_RUN_ID`,
 * `SLUICE_STEP`, `SLUICE_ATTEMPT`, `SLUICE_PIPELINE`, `with.env`, and `SLUICE_SECRET_<NAME>` only for the secrets
 * whose values its rendered `run` or `env` holds (those it names as `${{ secrets.NAME }}`). Each stdout/stderr
 * line is passed to `ctx.log`. A non-zero exit or death by signal throws `COMMAND_FAILED` (retryable) with the
 * exit code or signal and the last stderr lines (at most 20 lines, 4 KiB), never the command line, which may hold
 * rendered values.
 *
 * The process runs in its own process group and the step owns that whole tree: when `ctx.signal` aborts, the
 * group gets SIGTERM, then SIGKILL after `kill_grace`, and `execute` rejects at once with the abort reason
 * (`CANCELLED` when the reason is not an Error). Processes the main process leaves running in its group when it
 * exits are terminated the same way. The group never outlives the worker process: a small watchdog process
 * (supervised-process.ts) ends it the same way when the worker's process ends, even by SIGKILL. A process that
 * moves itself to a new session escapes this.
 */
export function createCommandStep(): StepType<CommandConfig> {
  return {
    type: 'command',
    configSchema: commandConfigSchema,
    cacheInputs: commandCacheInputs,
    templateEncoder: (written) => (written['shell_unsafe'] === true ? undefined : isPosixShell(written['shell']) ? quoteShellValues : refuseShellValues),
    async execute(ctx, config) {
      const plan = planCommand(ctx, config);
      await assertDirectory(plan.cwd);
      const result = await runProcess(ctx, plan);
      if (result.code !== 0) throw exitFailure(result);
      return toOutput(plan, result);
    },
  };
}

function planCommand(ctx: StepContext, config: CommandConfig): CommandPlan {
  const [file, ...args] = toArgv(config);
  if (file === undefined) throw invalidConfig('`run` must not be empty');
  return {
    file,
    args,
    cwd: path.resolve(ctx.baseDir, config.cwd ?? '.'),
    env: buildEnv(ctx, config),
    graceMs: config.kill_grace === undefined ? DEFAULT_KILL_GRACE_MS : parseDurationMs(config.kill_grace),
    output: parseOutputMode(config.output),
  };
}

/**
 * Each value templated into a string `run` is written as shell data (see {@link quoteForShell}); a whole-`run`
 * template of a list is argv.
 */
function quoteShellValues(value: unknown, spot: TemplateSpot): unknown {
  if (spot.path.length !== 1 || spot.path[0] !== 'run') return value;
  if (spot.whole && (Array.isArray(value) || value === undefined)) return value;
  return quoteForShell(templateText(value), spot.before);
}

const POSIX_SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash']);

/** Whether `shell` as written quotes like a POSIX shell (the default `/bin/sh` does). */
function isPosixShell(shell: unknown): boolean {
  return shell === undefined || (typeof shell === 'string' && POSIX_SHELLS.has(path.basename(shell)));
}

/** Another interpreter (`shell: python3`) has its own quoting, which Sluice does not write. */
function refuseShellValues(value: unknown, spot: TemplateSpot): unknown {
  if (spot.path.length !== 1 || spot.path[0] !== 'run' || (spot.whole && Array.isArray(value))) return value;
  throw invalidConfig('a ${{ }} value in a `run` string needs a POSIX `shell` (sh, bash, dash, zsh, ksh) to be quoted; use argv form or pass it in `env`');
}

function toArgv(config: CommandConfig): string[] {
  if (typeof config.run === 'string') return [config.shell ?? DEFAULT_SHELL, '-c', config.run];
  // Templates may resolve argv items to numbers; the process only sees strings anyway.
  if (Array.isArray(config.run)) return config.run.map((arg) => String(arg));
  throw invalidConfig('`run` must be a string or an array of strings');
}

const SECRET_PREFIX = 'SLUICE_SECRET_';

function buildEnv(ctx: StepContext, config: CommandConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // A secret the step does not name must not reach a process that may print its environment.
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith(SECRET_PREFIX)) env[name] = value;
  Object.assign(env, usedSecrets(ctx.secrets, config), {
    SLUICE_RUN_ID: ctx.run.id,
    SLUICE_STEP: ctx.step,
    SLUICE_ATTEMPT: String(ctx.run.attempt),
    SLUICE_PIPELINE: ctx.run.pipeline,
  });
  // The attempt's span, for a process that traces too (W3C Trace Context over the environment).
  if (ctx.traceparent !== undefined) env['TRACEPARENT'] = ctx.traceparent;
  for (const [name, value] of Object.entries(config.env ?? {})) {
    env[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return env;
}

/**
 * `SLUICE_SECRET_<NAME>` for each secret whose value the rendered `run` or `env` holds: the config is rendered
 * before the step sees it, so a value there is how a `${{ secrets.NAME }}` in the definition shows.
 */
function usedSecrets(secrets: Readonly<Record<string, string>>, config: CommandConfig): Record<string, string> {
  const texts: string[] = [];
  visitStrings([config.run, config.env ?? {}], (text) => texts.push(text));
  const used: Record<string, string> = {};
  for (const [name, value] of Object.entries(secrets)) {
    if (value !== '' && texts.some((text) => text.includes(value))) used[`${SECRET_PREFIX}${name}`] = value;
  }
  return used;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses `kill_grace`: a number or a bare numeric string is milliseconds; otherwise `<n>ms|s|m|h`. */
function parseDurationMs(value: string | number): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const match = typeof value === 'string' ? DURATION.exec(value.trim()) : null;
  const unitMs = UNIT_MS[match?.[2] ?? 'ms'];
  if (!match || unitMs === undefined) {
    throw invalidConfig(`kill_grace must be a duration like 5000, "500ms" or "2s" (got ${JSON.stringify(value)})`);
  }
  return Number(match[1]) * unitMs;
}

function parseOutputMode(value: unknown): CommandOutputMode {
  if (value === undefined) return 'text';
  const mode = OUTPUT_MODES.find((candidate) => candidate === value);
  if (mode === undefined) throw invalidConfig(`output must be one of ${OUTPUT_MODES.join(', ')}`);
  return mode;
}

/** Checked up front because spawn reports a missing cwd as ENOENT of the command, which misleads. */
async function assertDirectory(cwd: string): Promise<void> {
  const isDirectory = await stat(cwd).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isDirectory) throw new SluiceError('COMMAND_FAILED', `working directory not found: ${cwd}`);
}

function runProcess(ctx: StepContext, plan: CommandPlan): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) {
      reject(abortError(ctx.signal));
      return;
    }
    let settled = false;
    // Lines still draining after an abort belong to an attempt that is already over.
    const capture = createCapture((stream, line) => {
      if (!settled) ctx.log(stream, line);
    });
    const started = startProcess(plan, reject);
    if (started === undefined) return;
    const { child } = started;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      finish();
    };
    const onAbort = () => {
      void started.terminate();
      settle(() => reject(abortError(ctx.signal)));
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => capture.stdout(chunk));
    child.stderr?.on('data', (chunk: Buffer) => capture.stderr(chunk));
    child.once('error', (err) => settle(() => reject(spawnFailure(plan, err))));
    // Leftovers of the main process would be orphaned and could hold the pipes open forever.
    child.once('exit', () => void started.terminate());
    child.once('close', (code, signal) => {
      const output = capture.finish();
      settle(() => resolve({ code, signal, ...output }));
    });
  });
}

/** Spawns in a new process group so the whole tree can be signalled at once. */
function startProcess(plan: CommandPlan, reject: (err: Error) => void): SupervisedProcess | undefined {
  try {
    return spawnSupervised({ file: plan.file, args: plan.args, cwd: plan.cwd, env: plan.env, graceMs: plan.graceMs });
  } catch (err) {
    // Invalid arguments (a NUL byte in argv or env) throw synchronously instead of emitting 'error'.
    reject(spawnFailure(plan, err));
    return undefined;
  }
}

type LineSink = (stream: 'stdout' | 'stderr', line: string) => void;

function createCapture(log: LineSink) {
  const stdoutTail = createByteTail(STDOUT_TAIL_BYTES);
  const stderrTail: string[] = [];
  let lastStdoutLine: string | undefined;
  const stdoutLines = createLineSplitter((line) => {
    log('stdout', line);
    if (line.trim() !== '') lastStdoutLine = line;
  });
  const stderrLines = createLineSplitter((line) => {
    log('stderr', line);
    if (line.trim() !== '') pushBounded(stderrTail, truncate(line, STDERR_LINE_CHARS), STDERR_TAIL_LINES);
  });
  return {
    stdout(chunk: Buffer): void {
      stdoutTail.push(chunk);
      stdoutLines.push(chunk);
    },
    stderr: (chunk: Buffer): void => stderrLines.push(chunk),
    finish(): CapturedOutput {
      stdoutLines.flush();
      stderrLines.flush();
      return { stdoutTail: stdoutTail.text().trim(), lastStdoutLine, stderrTail };
    },
  };
}

/** Splits a byte stream into lines; a chunk may end mid-line or mid-character, and `flush` emits the rest. */
function createLineSplitter(onLine: (line: string) => void) {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const emit = (line: string) => onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  return {
    push(chunk: Buffer): void {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      lines.forEach(emit);
      if (partial.length >= MAX_LINE_CHARS) {
        emit(partial);
        partial = '';
      }
    },
    flush(): void {
      const rest = partial + decoder.end();
      partial = '';
      if (rest !== '') emit(rest);
    },
  };
}

/** Keeps the last `limit` bytes of a stream. */
function createByteTail(limit: number) {
  let tail = Buffer.alloc(0);
  return {
    push(chunk: Buffer): void {
      const joined = Buffer.concat([tail, chunk]);
      // Copy so a large chunk is not kept alive by a small view into it.
      tail = joined.length > limit ? Buffer.from(joined.subarray(joined.length - limit)) : joined;
    },
    text(): string {
      // Cutting at a byte offset can split a character; drop its orphaned continuation bytes.
      let start = 0;
      while (start < tail.length && (tail.readUInt8(start) & 0xc0) === 0x80) start += 1;
      return tail.subarray(start).toString('utf8');
    },
  };
}

function pushBounded(lines: string[], line: string, limit: number): void {
  lines.push(line);
  if (lines.length > limit) lines.shift();
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

function toOutput(plan: CommandPlan, result: ProcessResult): unknown {
  if (plan.output === 'none') return { exit_code: 0 };
  if (plan.output === 'json') return parseJsonOutput(plan, result.lastStdoutLine);
  return { exit_code: 0, stdout: result.stdoutTail };
}

function parseJsonOutput(plan: CommandPlan, line: string | undefined): unknown {
  if (line === undefined) {
    throw new SluiceError('COMMAND_FAILED', 'command printed nothing; output: json expects a JSON line', {
      retryable: true,
    });
  }
  try {
    return JSON.parse(line) as unknown;
  } catch (err) {
    const message = `command: last stdout line is not JSON: ${truncate(line, 200)}`;
    throw new SluiceError('COMMAND_FAILED', message, { retryable: true, cause: err });
  }
}

function exitFailure(result: ProcessResult): SluiceError {
  const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
  const tail = stderrTail(result.stderrTail);
  const stderr = tail === '' ? '' : `; last stderr lines:\n${tail}`;
  return new SluiceError('COMMAND_FAILED', `command ${how}${stderr}`, {
    retryable: true,
    details: { exit_code: result.code, signal: result.signal, stderr: tail },
  });
}

/** The last stderr lines, at most {@link STDERR_TAIL_CHARS} characters of them (the end is what explains a failure). */
function stderrTail(lines: string[]): string {
  const text = lines.join('\n');
  return text.length > STDERR_TAIL_CHARS ? `...${text.slice(text.length - STDERR_TAIL_CHARS)}` : text;
}

/** A missing or non-executable program will not appear by retrying; other spawn errors (EAGAIN) might pass. */
function spawnFailure(plan: CommandPlan, err: unknown): SluiceError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'executable not found' : code === 'EACCES' ? 'permission denied' : 'spawn failed';
  const detail = errorMessage(err);
  return new SluiceError('COMMAND_FAILED', `cannot start "${plan.file}": ${reason} (${detail})`, {
    retryable: code !== 'ENOENT' && code !== 'EACCES',
    cause: err,
  });
}

/**
 * The abort reason when it is an Error. `signal.abort()` with no reason yields a DOMException without a
 * stable code, so that (and any non-Error reason) becomes `CANCELLED`.
 */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException)) return reason;
  return new SluiceError('CANCELLED', 'step was cancelled');
}

function invalidConfig(message: string): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `command step: ${message}`);
}
