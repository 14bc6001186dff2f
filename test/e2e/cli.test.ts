/**
 * End to end: the `sluice` CLI as a user runs it, on a SQLite store in a temp folder, with real processes for the
 * steps. Commands run in this process (the same program, parsing, exit codes and output as the binary, without a
 * Node.js start each); the binary itself runs where a second process matters and for its exit codes.
 * Steps are `command` steps that append a line to $MARKERS/<step> each time they execute.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import {
  countLines,
  isRunning,
  killSpawned,
  REPO_ROOT,
  runCli,
  startCli,
  stepStatuses,
  tempDir,
  trackGroupsFrom,
  waitCli,
  waitFor,
  type CliResult,
} from '../support/cli.js';
import { runCliInProcess, runCliJsonInProcess } from '../support/cli-in-process.js';

// Each test runs several CLI processes; on a loaded machine that takes a while.
vi.setConfig({ testTimeout: 120_000 });

let tmp: ReturnType<typeof tempDir>;
let store: string;
let markers: string;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});

beforeEach(() => {
  tmp = tempDir('sluice-cli-');
  store = path.join(tmp.dir, 's.db');
  markers = path.join(tmp.dir, 'markers');
});

afterEach(async () => {
  await killSpawned();
  tmp.cleanup();
});

/** Runs `sluice ...args --store sqlite:<tmp>/s.db` (in this process) in the temp folder with MARKERS (and `env`) set. */
function sluice(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCliInProcess([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: { MARKERS: markers, ...env } });
}

function sluiceJson<T = any>(args: string[]): Promise<T> {
  return runCliJsonInProcess<T>([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: { MARKERS: markers } });
}

/** Runs the `sluice` binary, like {@link sluice}. */
function sluiceBinary(args: string[]): Promise<CliResult> {
  return runCli([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: { MARKERS: markers } });
}

function describeResult(r: CliResult): string {
  return `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

function expectExit(r: CliResult, code: number): void {
  expect(r.code, describeResult(r)).toBe(code);
}

/** The run id from the first line `run <id>  <pipeline> v<n>` that `run` prints. */
function runIdOf(r: CliResult): string {
  const id = /^run (\S+) {2}\S+ v\d+$/m.exec(r.stdout)?.[1];
  if (!id) throw new Error(`no run id in output:\n${describeResult(r)}`);
  return id;
}

/** A shell snippet recording one execution of `step`. */
function mark(step: string): string {
  return `mkdir -p "$MARKERS" && echo "$SLUICE_RUN_ID $SLUICE_ATTEMPT" >> "$MARKERS/${step}"`;
}

function executions(...steps: string[]): Record<string, number> {
  return Object.fromEntries(steps.map((s) => [s, countLines(path.join(markers, s))]));
}

/** Writes a pipeline as YAML into the temp folder and returns its path. */
function writePipeline(file: string, spec: Record<string, unknown>): string {
  const full = path.join(tmp.dir, file);
  writeFileSync(full, stringify(spec));
  return full;
}

/** A command step that records its execution and then runs `then` (default: nothing). */
function cmd(name: string, opts: { needs?: string[]; then?: string; extra?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    uses: 'command',
    ...(opts.needs ? { needs: opts.needs } : {}),
    with: { run: `${mark(name)}${opts.then ? `; ${opts.then}` : ''}` },
    ...opts.extra,
  };
}

describe('the sluice binary', () => {
  it('exits 0 when the run succeeded, 1 when it failed and 2 on an invalid pipeline file, printing what the program prints', async () => {
    const ok = writePipeline('ok.yaml', { name: 'ok', steps: { a: cmd('a') } });
    const good = await sluiceBinary(['run', ok]);
    expectExit(good, 0);
    expect(good.stdout).toContain(`run ${runIdOf(good)} succeeded in `);
    const failing = writePipeline('failing.yaml', { name: 'failing', steps: { x: cmd('x', { then: 'exit 1' }) } });
    const bad = await sluiceBinary(['run', failing]);
    expectExit(bad, 1);
    expect(bad.stdout).toContain(`run ${runIdOf(bad)} failed`);
    const file = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nsteps:\n  a:\n    uses: comand\n');
    const invalid = await sluiceBinary(['validate', file]);
    expectExit(invalid, 2);
    expect(invalid.stderr).toContain(`${file}:4:11: steps.a.uses: unknown step type "comand"`);
    expect(executions('a', 'x')).toEqual({ a: 1, x: 1 });
  });
});

describe('sluice run, runs, status, logs', () => {
  it('prints parseable --json output on an empty store', async () => {
    expect(await sluiceJson(['status'])).toBeNull();
    expect(await sluiceJson(['runs'])).toEqual([]);
    expect(await sluiceJson(['dlq'])).toEqual([]);
    const text = await sluice(['status']);
    expectExit(text, 0);
    expect(text.stdout).toBe('no runs yet\n');
  });

  it('runs a pipeline and shows it in runs, status and logs, as text and as JSON', async () => {
    const file = writePipeline('hello.yaml', {
      name: 'hello',
      steps: {
        greet: cmd('greet', { then: 'echo "hello from greet"; echo "a warning" >&2' }),
        shout: { uses: 'command', needs: ['greet'], with: { run: 'echo "heard: ${{ steps.greet.stdout }}"' } },
      },
    });
    const r = await sluice(['run', file]);
    expectExit(r, 0);
    const id = runIdOf(r);
    expect(r.stdout).toMatch(/step\.succeeded +greet {2}attempt 1/);
    expect(r.stdout).toContain(`run ${id} succeeded in `);

    // runs
    const runsText = await sluice(['runs']);
    expectExit(runsText, 0);
    expect(runsText.stdout).toMatch(/^RUN +PIPELINE +STATUS +CREATED +DURATION$/m);
    expect(runsText.stdout).toMatch(new RegExp(`^${id} +hello v1 +succeeded `, 'm'));
    const runs = await sluiceJson<Array<{ id: string; pipeline: string; version: number; status: string }>>(['runs']);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id, pipeline: 'hello', version: 1, status: 'succeeded' });
    expect(await sluiceJson(['runs', '--status', 'failed'])).toEqual([]);
    expect(await sluiceJson(['runs', '--pipeline', 'other'])).toEqual([]);

    // status RUN (and the newest run without RUN)
    const statusText = await sluice(['status', id]);
    expectExit(statusText, 0);
    expect(statusText.stdout).toContain(`run ${id}  hello v1  succeeded`);
    expect(statusText.stdout).toMatch(/^greet +succeeded +1 /m);
    expect(statusText.stdout).toMatch(/^shout +succeeded +1 /m);
    const status = await sluiceJson(['status']);
    expect(status.id).toBe(id);
    expect(stepStatuses(status)).toEqual({ greet: 'succeeded', shout: 'succeeded' });
    expect(status.steps[1].output).toEqual({ exit_code: 0, stdout: 'heard: hello from greet' });

    // logs RUN STEP: the command's stdout and stderr, line by line
    const logs = await sluice(['logs', id, 'greet']);
    expectExit(logs, 0);
    expect(logs.stdout.split('\n')).toEqual(expect.arrayContaining(['greet#1 hello from greet', 'greet#1 [stderr] a warning']));
    expect(logs.stdout).not.toContain('shout#');
    const allLogs = await sluiceJson<Array<{ step: string; stream: string; line: string; attempt: number }>>(['logs', id]);
    expect(allLogs.map((l) => [l.step, l.stream, l.line])).toEqual(
      expect.arrayContaining([
        ['greet', 'stdout', 'hello from greet'],
        ['greet', 'stderr', 'a warning'],
        ['shout', 'stdout', 'heard: hello from greet'],
      ]),
    );

    // run --json prints the final run as JSON
    const rerun = await sluice(['run', file, '--json']);
    expectExit(rerun, 0);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ pipeline: 'hello', status: 'succeeded' });

    // unknown run
    const missing = await sluice(['status', 'r-nope']);
    expectExit(missing, 1);
    expect(missing.stderr).toContain('RUN_NOT_FOUND');
    const missingJson = await sluice(['logs', 'r-nope', '--json']);
    expectExit(missingJson, 1);
    expect(JSON.parse(missingJson.stderr)).toMatchObject({ error: { code: 'RUN_NOT_FOUND' } });
  });
});

describe('failures, retry, rollback', () => {
  it('a failing command fails the run (exit 1) and its exit code and stderr show in status; retry + resume re-runs only it', async () => {
    const flag = path.join(tmp.dir, 'fixed.flag');
    const file = writePipeline('flaky.yaml', {
      name: 'flaky',
      steps: {
        a: cmd('a'),
        b: cmd('b', { needs: ['a'], then: `if [ -f "$FLAG" ]; then echo fixed; else echo "first line" >&2; echo "boom: flag missing" >&2; exit 3; fi` }),
        c: cmd('c', { needs: ['b'] }),
      },
    });
    const env = { FLAG: flag };
    const r = await sluice(['run', file], env);
    expectExit(r, 1);
    const id = runIdOf(r);
    expect(r.stdout).toMatch(/step\.failed +b {2}attempt 1 {2}\d+ms {2}COMMAND_FAILED: command exited with code 3/);
    expect(r.stdout).toContain(`run ${id} failed`);

    const text = await sluice(['status', id]);
    expectExit(text, 0);
    expect(text.stdout).toContain(`run ${id}  flaky v1  failed`);
    expect(text.stdout).toMatch(/^b +failed +1 +\S+ +COMMAND_FAILED: command exited with code 3/m);
    expect(text.stdout).toMatch(/^c +cancelled /m);
    const status = await sluiceJson(['status', id]);
    expect(status.status).toBe('failed');
    expect(stepStatuses(status)).toEqual({ a: 'succeeded', b: 'failed', c: 'cancelled' });
    const error = status.steps.find((s: { name: string }) => s.name === 'b').error;
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error.message).toContain('exited with code 3');
    expect(error.message).toContain('last stderr lines:\nfirst line\nboom: flag missing');

    // A run failed for good is a dead letter.
    expect((await sluiceJson<Array<{ id: string }>>(['dlq'])).map((x) => x.id)).toEqual([id]);
    // ... whose error names the step that failed and why.
    const dlq = await sluice(['dlq']);
    expectExit(dlq, 0);
    expect(dlq.stdout).toMatch(/ERROR/);
    expect(dlq.stdout).toMatch(new RegExp(`^${id} .*step "b" failed: COMMAND_FAILED: command exited with code 3`, 'm'));

    // Fix the cause, retry, work it.
    writeFileSync(flag, '');
    const retry = await sluice(['retry', id], env);
    expectExit(retry, 0);
    expect(retry.stdout).toBe(`run ${id} is running\n`);
    const resumed = await sluice(['run', '--resume', id], env);
    expectExit(resumed, 0);
    expect(executions('a', 'b', 'c')).toEqual({ a: 1, b: 2, c: 1 });
    const after = await sluiceJson(['status', id]);
    expect(after.status).toBe('succeeded');
    expect(stepStatuses(after)).toEqual({ a: 'succeeded', b: 'succeeded', c: 'succeeded' });
    expect(after.steps.find((s: { name: string }) => s.name === 'b').error).toBeNull();
    expect(await sluiceJson(['dlq'])).toEqual([]);
  });

  it('run --resume of a failed run retries it directly', async () => {
    const flag = path.join(tmp.dir, 'fixed.flag');
    const file = writePipeline('flaky.yaml', {
      name: 'flaky',
      steps: { a: cmd('a', { then: `[ -f "$FLAG" ] || exit 7` }), b: cmd('b', { needs: ['a'] }) },
    });
    const r = await sluice(['run', file], { FLAG: flag });
    expectExit(r, 1);
    writeFileSync(flag, '');
    expectExit(await sluice(['run', '--resume', runIdOf(r)], { FLAG: flag }), 0);
    expect(executions('a', 'b')).toEqual({ a: 2, b: 1 });
  });

  it('rollback RUN --to STEP then run --resume re-runs that step and its descendants only', async () => {
    const file = writePipeline('chain.yaml', {
      name: 'chain',
      steps: {
        a: cmd('a'),
        b: cmd('b', { needs: ['a'] }),
        c: cmd('c', { needs: ['b'] }),
        d: cmd('d', { needs: ['a'] }),
      },
    });
    const r = await sluice(['run', file]);
    expectExit(r, 0);
    const id = runIdOf(r);
    expect(executions('a', 'b', 'c', 'd')).toEqual({ a: 1, b: 1, c: 1, d: 1 });

    const rollback = await sluice(['rollback', id, '--to', 'b']);
    expectExit(rollback, 0);
    expect(rollback.stdout).toBe(`run ${id} is running\n`);
    const mid = await sluiceJson(['status', id]);
    expect(stepStatuses(mid)).toMatchObject({ a: 'succeeded', d: 'succeeded', c: 'pending' });
    expect(['queued', 'pending']).toContain(stepStatuses(mid)['b']);

    const resumed = await sluice(['run', '--resume', id]);
    expectExit(resumed, 0);
    expect(executions('a', 'b', 'c', 'd')).toEqual({ a: 1, b: 2, c: 2, d: 1 });
    const after = await sluiceJson(['status', id]);
    expect(after.status).toBe('succeeded');
    expect(stepStatuses(after)).toEqual({ a: 'succeeded', b: 'succeeded', c: 'succeeded', d: 'succeeded' });

    const unknown = await sluice(['rollback', id, '--to', 'zzz']);
    expectExit(unknown, 1);
    expect(unknown.stderr).toContain('STEP_NOT_FOUND');
  });
});

describe('pause, resume, cancel', () => {
  function pipeline(): string {
    return writePipeline('ctl.yaml', { name: 'ctl', steps: { a: cmd('a'), b: cmd('b', { needs: ['a'] }) } });
  }

  async function detach(file: string): Promise<string> {
    const r = await sluice(['run', file, '--detach']);
    expectExit(r, 0);
    expect(r.stdout).toMatch(/^r[0-9a-z]+\n$/);
    return r.stdout.trim();
  }

  async function statusOf(id: string): Promise<string> {
    return (await sluiceJson<{ status: string }>(['status', id])).status;
  }

  it('controls a detached run and rejects illegal transitions with ILLEGAL_TRANSITION', async () => {
    const id = await detach(pipeline());
    expect(await statusOf(id)).toBe('queued');
    expect(executions('a', 'b')).toEqual({ a: 0, b: 0 });

    const pause = await sluice(['pause', id]);
    expectExit(pause, 0);
    expect(pause.stdout).toBe(`run ${id} is paused\n`);
    expect(await statusOf(id)).toBe('paused');

    const resume = await sluice(['resume', id]);
    expectExit(resume, 0);
    expect(resume.stdout).toBe(`run ${id} is running\n`);

    const cancel = await sluice(['cancel', id, '--json']);
    expectExit(cancel, 0);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ id, status: 'cancelled' });
    const cancelled = await sluiceJson(['status', id]);
    expect(stepStatuses(cancelled)).toEqual({ a: 'cancelled', b: 'cancelled' });

    for (const verb of ['resume', 'pause', 'cancel']) {
      const illegal = await sluice([verb, id]);
      expectExit(illegal, 1);
      expect(illegal.stderr).toMatch(/^sluice: ILLEGAL_TRANSITION: run \S+ is cancelled/);
    }

    // run --resume of a cancelled run retries it and works it here.
    const resumed = await sluice(['run', '--resume', id]);
    expectExit(resumed, 0);
    expect(await statusOf(id)).toBe('succeeded');
    expect(executions('a', 'b')).toEqual({ a: 1, b: 1 });

    const again = await sluice(['resume', id]);
    expectExit(again, 1);
    expect(again.stderr).toContain('ILLEGAL_TRANSITION');
    const json = await sluice(['resume', id, '--json']);
    expectExit(json, 1);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'ILLEGAL_TRANSITION' } });
    const resumeSucceeded = await sluice(['run', '--resume', id]);
    expect(resumeSucceeded.code).not.toBe(0);
    expect(resumeSucceeded.stderr).toContain('ILLEGAL_TRANSITION');
    expect(await statusOf(id)).toBe('succeeded');
  });

  it('run --resume of a paused run resumes and finishes it', async () => {
    const id = await detach(pipeline());
    expectExit(await sluice(['pause', id]), 0);
    const r = await sluice(['run', '--resume', id]);
    expectExit(r, 0);
    expect(await statusOf(id)).toBe('succeeded');
    expect(executions('a', 'b')).toEqual({ a: 1, b: 1 });
  });

  it('cancel of a run being worked by another CLI process kills its command and makes that run exit 1', async () => {
    const pids = path.join(tmp.dir, 'pids');
    const file = writePipeline('long.yaml', {
      name: 'long',
      steps: { wait: cmd('wait', { then: `echo $$ >> "${pids}"; sleep 120` }), after: cmd('after', { needs: ['wait'] }) },
    });
    const child = startCli(['run', file, '--store', `sqlite:${store}`], { cwd: tmp.dir, env: { MARKERS: markers } });
    const done = waitCli(child, 90_000);
    const pid = await waitFor('the long step to start', () => trackGroupsFrom(pids)[0], 30_000);
    const id = (await sluiceJson<{ id: string }>(['status'])).id;
    const cancelledAt = Date.now();
    const cancel = await sluice(['cancel', id]);
    expectExit(cancel, 0);
    const r = await done;
    expectExit(r, 1);
    // The working CLI notices a cancel made by another process by polling, then stops its worker.
    console.log(`cross-process cancel: the working CLI exited ${Date.now() - cancelledAt} ms after \`sluice cancel\``);
    expect(r.stdout).toContain(`run ${id} cancelled`);
    await waitFor('the cancelled command to be killed', () => !isRunning(pid), 15_000, 50);
    expect(stepStatuses(await sluiceJson(['status', id]))).toEqual({ wait: 'cancelled', after: 'cancelled' });
    expect(executions('after')).toEqual({ after: 0 });
  }, 120_000);
});

describe('cache and reset', () => {
  it('a second run is cached; reset makes the next run execute again', async () => {
    const file = writePipeline('cache.yaml', { name: 'cache', steps: { a: cmd('a', { then: 'echo same' }), b: cmd('b', { needs: ['a'] }) } });
    expectExit(await sluice(['run', file]), 0);
    const second = await sluice(['run', file]);
    expectExit(second, 0);
    expect(executions('a', 'b')).toEqual({ a: 1, b: 1 });
    expect(stepStatuses(await sluiceJson(['status', runIdOf(second)]))).toEqual({ a: 'cached', b: 'cached' });

    const reset = await sluice(['reset', file]);
    expectExit(reset, 0);
    expect(reset.stdout).toBe('pipeline cache: 2 cached step result(s) dropped\n');
    const third = await sluice(['run', file]);
    expectExit(third, 0);
    expect(executions('a', 'b')).toEqual({ a: 2, b: 2 });
    expect(stepStatuses(await sluiceJson(['status', runIdOf(third)]))).toEqual({ a: 'succeeded', b: 'succeeded' });

    // --force bypasses the cache; reset by registered NAME works too.
    expectExit(await sluice(['run', file, '--force']), 0);
    expect(executions('a', 'b')).toEqual({ a: 3, b: 3 });
    expect(await sluiceJson(['reset', 'cache'])).toEqual({ pipeline: 'cache', dropped: 2 });
    expectExit(await sluice(['run', 'cache']), 0);
    expect(executions('a', 'b')).toEqual({ a: 4, b: 4 });
  });
});

describe('run input', () => {
  function pipeline(): string {
    return writePipeline('input.yaml', {
      name: 'with-input',
      input: { type: 'object', required: ['source'], properties: { source: { type: 'string' } }, additionalProperties: false },
      steps: { show: { uses: 'command', with: { run: 'echo "source=${{ input.source }}"' } } },
    });
  }

  it('takes --input as JSON or @file and passes it to steps', async () => {
    const file = pipeline();
    const inline = await sluice(['run', file, '--input', '{"source":"crm"}']);
    expectExit(inline, 0);
    expect((await sluice(['logs', runIdOf(inline), 'show'])).stdout).toBe('show#1 source=crm\n');

    const inputFile = path.join(tmp.dir, 'input.json');
    writeFileSync(inputFile, JSON.stringify({ source: 'erp' }));
    const fromFile = await sluice(['run', file, '--input', `@${inputFile}`]);
    expectExit(fromFile, 0);
    expect((await sluice(['logs', runIdOf(fromFile), 'show'])).stdout).toBe('show#1 source=erp\n');
    expect((await sluiceJson(['status', runIdOf(fromFile)])).input).toEqual({ source: 'erp' });
  });

  it('rejects input that violates the pipeline input schema, or is not JSON, with exit 2 and no run', async () => {
    const file = pipeline();
    const wrongType = await sluice(['run', file, '--input', '{"source":5}']);
    expectExit(wrongType, 2);
    expect(wrongType.stderr).toContain('INPUT_INVALID');
    expect(wrongType.stderr).toContain('input.source: must be string');

    const missing = await sluice(['run', file, '--input', '{}']);
    expectExit(missing, 2);
    expect(missing.stderr).toContain("must have required property 'source'");

    const none = await sluice(['run', file]);
    expectExit(none, 2);

    const notJson = await sluice(['run', file, '--input', '{source: crm']);
    expectExit(notJson, 2);
    expect(notJson.stderr).toContain('--input is not valid JSON');

    const missingFile = await sluice(['run', file, '--input', `@${path.join(tmp.dir, 'nope.json')}`]);
    expect(missingFile.code).not.toBe(0);

    expect(await sluiceJson(['runs'])).toEqual([]);
  });
});

describe('timeouts', () => {
  it('a step timeout fails the step and kills the whole process tree of its command', async () => {
    const pids = path.join(tmp.dir, 'pids');
    // The shell, a background child shell and its own background sleep: three processes, two levels deep.
    const tree = `sh -c 'sleep 300 & echo $! >> "${pids}"; wait' & echo $! >> "${pids}"; echo $$ >> "${pids}"; wait`;
    const file = writePipeline('timeout.yaml', {
      name: 'timeout',
      steps: { slow: { uses: 'command', timeout: '2s', with: { run: `${mark('slow')}; ${tree}`, kill_grace: '1s' } } },
    });
    const r = await sluice(['run', file]);
    trackGroupsFrom(pids);
    expectExit(r, 1);
    expect(r.stdout).toMatch(/step\.failed +slow {2}attempt 1 {2}[\d.]+m?s {2}STEP_TIMEOUT: step slow timed out after 2000 ms/);
    const status = await sluiceJson(['status', runIdOf(r)]);
    expect(status.steps[0]).toMatchObject({ name: 'slow', status: 'failed', error: { code: 'STEP_TIMEOUT' } });

    const tracked = readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number);
    expect(tracked).toHaveLength(3);
    await waitFor(`processes ${tracked.join(', ')} to be killed`, () => tracked.every((pid) => !isRunning(pid)), 15_000, 50);
  }, 90_000);
});

describe('validation', () => {
  const cases: Array<{ name: string; yaml: string; where: string; message: string }> = [
    {
      name: 'an unknown key',
      yaml: ['name: bad', 'steps:', '  a:', '    uses: command', '    with: { run: "true" }', '    retries: 3', ''].join('\n'),
      where: '6:5: steps.a.retries',
      message: 'unknown key "retries"; expected one of: uses, needs, with',
    },
    {
      name: 'a wrong type',
      yaml: ['name: bad', 'max_parallel: lots', 'steps:', '  a:', '    uses: command', '    with: { run: "true" }', ''].join('\n'),
      where: '2:15: max_parallel',
      message: 'expected an integer, got "lots"',
    },
    {
      name: 'an unknown step type',
      yaml: ['name: bad', 'steps:', '  a:', '    uses: comand', '    with: { run: "true" }', ''].join('\n'),
      where: '4:11: steps.a.uses',
      message: 'unknown step type "comand" (did you mean "command"?)',
    },
    {
      name: 'needs naming a missing step',
      yaml: ['name: bad', 'steps:', '  a:', '    uses: command', '    with: { run: "true" }', '  b:', '    uses: command', '    needs: [a, missing]', '    with: { run: "true" }', ''].join('\n'),
      where: '8:16: steps.b.needs[1]',
      message: 'needs "missing", but there is no step named "missing"',
    },
    {
      name: 'a duplicate step name',
      yaml: ['name: bad', 'steps:', '  a:', '    uses: command', '    with: { run: "true" }', '  a:', '    uses: command', '    with: { run: "false" }', ''].join('\n'),
      where: '6:3: steps.a',
      message: 'duplicate step name "a"',
    },
    {
      name: 'a cycle',
      yaml: [
        'name: bad',
        'steps:',
        '  a:',
        '    uses: command',
        '    needs: [c]',
        '    with: { run: "true" }',
        '  b:',
        '    uses: command',
        '    needs: [a]',
        '    with: { run: "true" }',
        '  c:',
        '    uses: command',
        '    needs: [b]',
        '    with: { run: "true" }',
        '',
      ].join('\n'),
      where: '5:13: steps.a.needs[0]',
      message: 'dependency cycle: a -> b -> c -> a',
    },
  ];

  it.each(cases)('validate rejects $name with exit 2, file:line:column, key path and message', async ({ yaml, where, message }) => {
    const file = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(file, yaml);
    const r = await sluice(['validate', file]);
    expectExit(r, 2);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`${file}:${where}: ${message}`), r.stderr).toBe(true);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);

    const json = await sluice(['validate', file, '--json']);
    expectExit(json, 2);
    const [line, column, keyPath] = where.split(/:\s*/);
    const body = JSON.parse(json.stderr) as { error: { code: string; details: Array<Record<string, unknown>> } };
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.details[0]).toMatchObject({ file, line: Number(line), column: Number(column), path: keyPath });

    // `run` refuses the same file the same way, before touching the store.
    const run = await sluice(['run', file]);
    expectExit(run, 2);
    expect(run.stderr).toContain(`${file}:${where}: ${message}`);
    expect(await sluiceJson(['runs'])).toEqual([]);
  });

  it('validate reports every problem of a file, one per line', async () => {
    const file = path.join(tmp.dir, 'many.yaml');
    writeFileSync(file, ['name: Bad Name', 'steps:', '  a:', '    uses: command', '    needs: [zz]', '    colour: red', ''].join('\n'));
    const r = await sluice(['validate', file]);
    expectExit(r, 2);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(line.startsWith(`${file}:`)).toBe(true);
    expect(r.stderr).toContain(`${file}:1:7: name: `);
    expect(r.stderr).toContain(`${file}:5:13: steps.a.needs[0]: `);
    expect(r.stderr).toContain(`${file}:6:5: steps.a.colour: unknown key "colour"`);
  });

  it('an invalid or corrupt pipeline file leaves the stored runs and pipelines untouched', async () => {
    const file = writePipeline('keep.yaml', { name: 'keep', steps: { a: cmd('a'), b: cmd('b', { needs: ['a'] }) } });
    const first = await sluice(['run', file]);
    expectExit(first, 0);
    const failing = writePipeline('other.yaml', { name: 'other', steps: { x: cmd('x', { then: 'exit 1' }) } });
    expectExit(await sluice(['run', failing]), 1);

    const snapshot = async () => {
      const db = new Database(store, { readonly: true, fileMustExist: true });
      try {
        return {
          runs: await sluiceJson(['runs']),
          pipelines: db.prepare('SELECT name, version, hash, definition, source FROM pipelines ORDER BY name, version').all(),
          steps: db.prepare('SELECT run_id, name, status, attempts, output FROM steps ORDER BY run_id, seq').all(),
          events: (db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n,
          cache: (db.prepare('SELECT COUNT(*) AS n FROM step_cache').get() as { n: number }).n,
        };
      } finally {
        db.close();
      }
    };
    const before = await snapshot();
    expect(before.pipelines.map((p: any) => [p.name, p.version])).toEqual([
      ['keep', 1],
      ['other', 1],
    ]);

    const invalid = [
      // same name, a step type that does not exist
      'name: keep\nsteps:\n  a:\n    uses: nope\n',
      // same name, a cycle
      'name: keep\nsteps:\n  a: { uses: command, needs: [b], with: { run: "true" } }\n  b: { uses: command, needs: [a], with: { run: "true" } }\n',
      // not YAML at all
      'name: keep\nsteps: [\n  a: {{{\n',
      // binary garbage
      '\u0000\u0001\u0002PK\u0003\u0004 garbage',
      // an empty file
      '',
    ];
    for (const text of invalid) {
      writeFileSync(file, text);
      for (const args of [['run', file], ['run', file, '--force'], ['reset', file], ['graph', file], ['validate', file]]) {
        const r = await sluice(args);
        expect(r.code, `${args.join(' ')} on ${JSON.stringify(text)}\n${describeResult(r)}`).toBe(2);
        expect(r.stderr).toContain(file);
      }
    }
    expect(await snapshot()).toEqual(before);
    expect(executions('a', 'b', 'x')).toEqual({ a: 1, b: 1, x: 1 });

    // A valid change registers version 2 and leaves version 1 as it was.
    writeFileSync(file, stringify({ name: 'keep', steps: { a: cmd('a'), b: cmd('b', { needs: ['a'], then: 'echo v2' }) } }));
    const v2 = await sluice(['run', file]);
    expectExit(v2, 0);
    expect(v2.stdout).toMatch(/^run \S+ {2}keep v2$/m);
    const after = await snapshot();
    expect(after.pipelines.map((p: any) => [p.name, p.version])).toEqual([
      ['keep', 1],
      ['keep', 2],
      ['other', 1],
    ]);
    expect(after.pipelines[0]).toEqual(before.pipelines[0]);
  }, 240_000);
});
