import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/core/errors.js';
import { createCommandStep, type CommandConfig } from '../../src/steps/command/command-step.js';
import { createTestContext, linesOf } from '../fixtures/steps/step-context.js';

const fixtures = fileURLToPath(new URL('../fixtures/steps/', import.meta.url));
const treeScript = path.join(fixtures, 'commands', 'tree.sh');
const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function context() {
  return createTestContext(fixtures);
}

function run(config: CommandConfig) {
  const test = context();
  return { ...test, result: createCommandStep().execute(test.ctx, config) };
}

function tempFile(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-command-'));
  tempDirs.push(dir);
  return path.join(dir, name);
}

function readPids(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

/**
 * Whether a process is still running. Orphans are re-parented to PID 1, and where PID 1 does not reap
 * (minimal container inits) a dead process lingers as a zombie that signal 0 still reaches; a zombie has
 * finished running, so it counts as gone.
 */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  if (!existsSync('/proc/self/stat')) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true; // vanished between the two checks
  }
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('command step: running', () => {
  it('runs argv directly, without a shell', async () => {
    const { result, logs } = run({ run: ['printf', '%s\\n', 'a b', '$HOME', '; exit 1'] });
    expect(await result).toEqual({ exit_code: 0, stdout: 'a b\n$HOME\n; exit 1' });
    expect(linesOf(logs, 'stdout')).toEqual(['a b', '$HOME', '; exit 1']);
  });

  it('runs a string through /bin/sh and captures stdout and stderr lines', async () => {
    const { result, logs } = run({ run: 'echo out-$((1 + 2)); echo err-line >&2; echo second' });
    expect(await result).toEqual({ exit_code: 0, stdout: 'out-3\nsecond' });
    expect(linesOf(logs, 'stdout')).toEqual(['out-3', 'second']);
    expect(linesOf(logs, 'stderr')).toEqual(['err-line']);
  });

  it('uses the given shell', async () => {
    const { result } = run({ run: 'echo "${BASH_VERSION:+bash}"', shell: 'bash' });
    expect(await result).toEqual({ exit_code: 0, stdout: 'bash' });
  });

  it('joins lines split across chunks and flushes a last line without newline', async () => {
    const script = "process.stdout.write('hel'); setTimeout(() => process.stdout.write('lo\\r\\nworld'), 50)";
    const { result, logs } = run({ run: ['node', '-e', script] });
    await result;
    expect(linesOf(logs, 'stdout')).toEqual(['hello', 'world']);
  });

  it('passes SLUICE_* variables and config env, and runs in cwd resolved against baseDir', async () => {
    const { result } = run({
      run: 'pwd; echo "$SLUICE_RUN_ID $SLUICE_STEP $SLUICE_ATTEMPT $SLUICE_PIPELINE $GREETING $COUNT $FLAG"',
      cwd: 'commands',
      env: { GREETING: 'hi', COUNT: 3, FLAG: true },
    });
    const { stdout } = (await result) as { stdout: string };
    const [cwd, vars] = stdout.split('\n');
    expect(realpathSync(cwd ?? '')).toBe(realpathSync(path.join(fixtures, 'commands')));
    expect(vars).toBe('run-1 work 2 demo hi 3 true');
  });

  it('defaults cwd to baseDir and inherits the worker environment', async () => {
    process.env.SLUICE_TEST_INHERITED = 'inherited';
    try {
      const { result } = run({ run: 'pwd; echo "$SLUICE_TEST_INHERITED"' });
      const [cwd, inherited] = ((await result) as { stdout: string }).stdout.split('\n');
      expect(realpathSync(cwd ?? '')).toBe(realpathSync(fixtures));
      expect(inherited).toBe('inherited');
    } finally {
      delete process.env.SLUICE_TEST_INHERITED;
    }
  });
});

describe('command step: output', () => {
  it('parses the last non-empty stdout line as JSON with output: json', async () => {
    const { result } = run({ run: `echo progress; echo '{"score": 0.9, "tags": ["a"]}'; echo; echo '  '`, output: 'json' });
    expect(await result).toEqual({ score: 0.9, tags: ['a'] });
  });

  it('fails with COMMAND_FAILED when the last line is not JSON', async () => {
    const { result } = run({ run: 'echo \'{"ok": true}\'; echo done', output: 'json' });
    await expect(result).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(result).rejects.toThrow(/not JSON: done/);
  });

  it('fails with COMMAND_FAILED when nothing was printed in json mode', async () => {
    await expect(run({ run: 'true', output: 'json' }).result).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
  });

  it('returns only the exit code with output: none, still logging lines', async () => {
    const { result, logs } = run({ run: 'echo hidden', output: 'none' });
    expect(await result).toEqual({ exit_code: 0 });
    expect(linesOf(logs, 'stdout')).toEqual(['hidden']);
  });

  it('keeps the last 8 KiB of stdout', async () => {
    const { result } = run({ run: ['node', '-e', "process.stdout.write('x'.repeat(20000) + 'END\\n')"] });
    const { stdout } = (await result) as { stdout: string };
    expect(stdout).toHaveLength(8 * 1024 - 1); // the trailing newline is trimmed
    expect(stdout.endsWith('xEND')).toBe(true);
  });
});

describe('command step: failures', () => {
  it('fails with a retryable COMMAND_FAILED naming the exit code and the last stderr lines', async () => {
    const { result } = run({ run: 'echo working; echo "disk full" >&2; exit 3' });
    await expect(result).rejects.toMatchObject({ code: 'COMMAND_FAILED', retryable: true });
    await expect(result).rejects.toThrow(/exited with code 3.*\ndisk full/s);
  });

  it('names the signal when the process is killed by one', async () => {
    await expect(run({ run: 'kill -9 $$' }).result).rejects.toThrow(/killed by SIGKILL/);
  });

  it('fails with COMMAND_FAILED naming an argv command that does not exist', async () => {
    const { result } = run({ run: ['sluice-no-such-command', '--flag'] });
    await expect(result).rejects.toMatchObject({ code: 'COMMAND_FAILED', retryable: false });
    await expect(result).rejects.toThrow(/cannot start "sluice-no-such-command".*not found/);
  });

  it('fails with COMMAND_FAILED when cwd does not exist', async () => {
    const { result } = run({ run: ['true'], cwd: 'no-such-dir' });
    await expect(result).rejects.toThrow(/working directory not found: .*no-such-dir/);
  });

  it('rejects an invalid kill_grace before starting anything', async () => {
    await expect(run({ run: ['true'], kill_grace: 'soon' }).result).rejects.toThrow(/kill_grace/);
  });
});

describe('command step: abort', () => {
  async function startTree(extraArgs: string[], killGrace?: string) {
    const pidsFile = tempFile('pids');
    const config: CommandConfig = { run: ['sh', treeScript, pidsFile, ...extraArgs] };
    if (killGrace !== undefined) config.kill_grace = killGrace;
    const started = run(config);
    started.result.catch(() => {}); // asserted below; avoid an unhandled rejection meanwhile
    await waitFor(() => readPids(pidsFile).length === 4 && linesOf(started.logs, 'stdout').includes('ready'), 'tree');
    const pids = readPids(pidsFile);
    expect(pids.every(isRunning)).toBe(true);
    return { ...started, pids };
  }

  it('kills the whole process tree and rejects with the abort reason', async () => {
    const { result, controller, pids } = await startTree([]);
    const reason = new SluiceError('STEP_TIMEOUT', 'step timed out');
    controller.abort(reason);
    await expect(result).rejects.toBe(reason);
    await waitFor(() => !pids.some(isRunning), 'every process of the tree to end');
  });

  it('escalates to SIGKILL after kill_grace when the tree ignores SIGTERM', async () => {
    const { result, controller, pids } = await startTree(['stubborn'], '200ms');
    controller.abort();
    await expect(result).rejects.toMatchObject({ code: 'CANCELLED' });
    await waitFor(() => !pids.some(isRunning), 'every process of the tree to end');
  });

  it('does not start the process when already aborted', async () => {
    const marker = tempFile('started');
    const { ctx, controller } = context();
    controller.abort(new Error('too late'));
    await expect(createCommandStep().execute(ctx, { run: `touch ${marker}` })).rejects.toThrow('too late');
    expect(existsSync(marker)).toBe(false);
  });

  it('ends processes left running in its group when the main process exits', async () => {
    const pidFile = tempFile('orphan');
    const { result } = run({ run: `sleep 60 & echo $! > ${pidFile}` });
    expect(await result).toEqual({ exit_code: 0, stdout: '' });
    const [orphan] = readPids(pidFile);
    expect(orphan).toBeGreaterThan(0);
    await waitFor(() => !isRunning(orphan ?? 0), 'the background process to end');
  });
});

describe('command step: config schema', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(createCommandStep().configSchema);

  it('accepts a string or argv run with the optional settings', () => {
    expect(validate({ run: 'make test' })).toBe(true);
    expect(
      validate({ run: ['node', 'x.js'], env: { A: 'b', N: 1 }, cwd: 'sub', output: 'json', kill_grace: '2s', shell: 'bash' }),
    ).toBe(true);
    expect(validate({ run: 'x', kill_grace: 500 })).toBe(true);
  });

  it('rejects a missing or empty run, unknown keys and unknown output modes', () => {
    expect(validate({})).toBe(false);
    expect(validate({ run: [] })).toBe(false);
    expect(validate({ run: 'x', outputs: 'json' })).toBe(false);
    expect(validate({ run: 'x', output: 'yaml' })).toBe(false);
  });
});
