/**
 * Crash safety on real processes: the CLI working a run is killed with SIGKILL (by the test, or by itself at
 * a named crash point) and `sluice run --resume RUN` finishes the run. Completed steps never run again;
 * a step in flight may run twice (at-least-once execution). The CLI that is killed is the real binary; the
 * commands that inspect and resume afterwards run in this process (see test/support/cli-in-process.ts).
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  countLines,
  exited,
  killSpawned,
  REPO_ROOT,
  runCli,
  startCli,
  stepStatuses,
  tempDir,
  trackGroupsFrom,
  waitFor,
  type CliResult,
} from '../support/cli.js';
import { runCliInProcess, runCliJsonInProcess } from '../support/cli-in-process.js';

let tmp: ReturnType<typeof tempDir>;
let store: string;
let markers: string;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});

beforeEach(() => {
  tmp = tempDir('sluice-crash-');
  store = path.join(tmp.dir, 's.db');
  markers = path.join(tmp.dir, 'markers');
});

afterEach(async () => {
  // Commands of a SIGKILLed CLI live on in their own process groups; each wrote its PID to markers/pids.
  trackGroupsFrom(path.join(markers, 'pids'));
  await killSpawned();
  tmp.cleanup();
});

const storeArgs = () => ['--store', `sqlite:${store}`];

/** `sluice ...args` in this process. */
function sluice(args: string[]): Promise<CliResult> {
  return runCliInProcess([...args, ...storeArgs()], { cwd: tmp.dir, env: { MARKERS: markers } });
}

/** The `sluice` binary, for a run that kills itself at a crash point. */
function sluiceBinary(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli([...args, ...storeArgs()], { cwd: tmp.dir, env: { MARKERS: markers, ...env }, timeoutMs: 90_000 });
}

function status(id: string): Promise<{ id: string; status: string; steps: Array<{ name: string; status: string; attempts: number }> }> {
  return runCliJsonInProcess(['status', id, ...storeArgs()], { cwd: tmp.dir });
}

function describeResult(r: CliResult): string {
  return `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''} after ${r.ms} ms\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/**
 * A command step: records its PID (for cleanup) and one execution line in markers/<name>, does its work
 * (`body`, default: sleep `sleepS`), then records its completion in markers/<name>.done.
 */
function step(name: string, needs: string[], sleepS: number, body?: string): Record<string, unknown> {
  const work = body ?? `sleep ${sleepS}`;
  return {
    uses: 'command',
    ...(needs.length > 0 ? { needs } : {}),
    with: { run: `mkdir -p "$MARKERS"; echo $$ >> "$MARKERS/pids"; echo "$SLUICE_ATTEMPT" >> "$MARKERS/${name}"; ${work}; echo done >> "$MARKERS/${name}.done"` },
  };
}

function writePipeline(name: string, steps: Record<string, Record<string, unknown>>): string {
  const file = path.join(tmp.dir, `${name}.yaml`);
  writeFileSync(file, stringify({ name, max_parallel: 4, steps }));
  return file;
}

function executions(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, countLines(path.join(markers, n))]));
}

/** The id of the only run in the store. */
async function onlyRunId(): Promise<string> {
  const runs = await runCliJsonInProcess<Array<{ id: string }>>(['runs', ...storeArgs()], { cwd: tmp.dir });
  expect(runs).toHaveLength(1);
  return runs[0]!.id;
}

describe('crash safety', () => {
  it('kill -9 of the CLI mid-run: --resume finishes the run and no completed step runs again', async () => {
    // a -> (b, c) -> d -> (e, f)
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const file = writePipeline('crashy', {
      a: step('a', [], 0.4),
      b: step('b', ['a'], 0.4),
      c: step('c', ['a'], 0.6),
      d: step('d', ['b', 'c'], 0.4),
      e: step('e', ['d'], 0.4),
      f: step('f', ['d'], 0.4),
    });
    const child = startCli(['run', file, ...storeArgs()], { cwd: tmp.dir, env: { MARKERS: markers } });
    // Kill once a and one of b/c have completed their work (more may have committed by the time the signal lands).
    await waitFor('two steps to complete', () => names.filter((n) => existsSync(path.join(markers, `${n}.done`))).length >= 2, 60_000, 10);
    process.kill(child.pid!, 'SIGKILL');
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });

    const id = await onlyRunId();
    const atKill = await status(id);
    expect(atKill.status).toBe('running');
    const completed = atKill.steps.filter((s) => s.status === 'succeeded').map((s) => s.name);
    const inFlight = atKill.steps.filter((s) => s.status === 'running').map((s) => s.name);
    expect(completed).toContain('a');
    expect(completed.length).toBeLessThan(names.length);
    expect(executions(completed)).toEqual(Object.fromEntries(completed.map((n) => [n, 1])));

    const resumed = await sluice(['run', '--resume', id]);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    const after = await status(id);
    expect(after.status).toBe('succeeded');
    expect(stepStatuses(after)).toEqual(Object.fromEntries(names.map((n) => [n, 'succeeded'])));

    const counts = executions(names);
    for (const n of completed) expect(counts[n], `${n} had completed before the kill but ran again`).toBe(1);
    for (const n of names) expect(counts[n]).toBeGreaterThanOrEqual(1);
    for (const n of names) if (!inFlight.includes(n)) expect(counts[n], `${n} was not in flight at the kill`).toBe(1);
    const reran = names.filter((n) => counts[n]! > 1);
    console.log(
      `kill -9 mid-run: completed at kill [${completed.join(', ')}], in flight [${inFlight.join(', ')}]; ` +
        `re-ran after resume: ${reran.length} [${reran.join(', ')}]; resume took ${resumed.ms} ms`,
    );
  }, 180_000);

  describe.each([
    { point: 'after-commit', runsOfB: 1, bAtCrash: 'succeeded' },
    { point: 'before-commit', runsOfB: 2, bAtCrash: 'running' },
  ])('SLUICE_CRASH_POINT=$point:b', ({ point, runsOfB, bAtCrash }) => {
    it(`the CLI dies by SIGKILL ${point.replace('-', ' ')} of b; --resume runs b ${runsOfB === 1 ? 'no more' : 'again'} and every other step once`, async () => {
      const names = ['a', 'b', 'c', 'd'];
      // Sequential, so nothing else is in flight when b's result commits.
      const file = writePipeline('points', { a: step('a', [], 0.05), b: step('b', ['a'], 0.05), c: step('c', ['b'], 0.05), d: step('d', ['c'], 0.05) });
      const crashed = await sluiceBinary(['run', file], { SLUICE_CRASH_POINT: `${point}:b` });
      expect(crashed.signal, describeResult(crashed)).toBe('SIGKILL');
      expect(crashed.code).toBeNull();
      expect(crashed.stdout).not.toContain('run.succeeded');

      const id = await onlyRunId();
      const atCrash = await status(id);
      expect(atCrash.status).toBe('running');
      expect(stepStatuses(atCrash)).toMatchObject({ a: 'succeeded', b: bAtCrash });
      // The commit that records b may also lease c to the same worker (complete-and-claim), so c can be
      // 'running' at the crash, but it has not executed.
      expect(['pending', 'queued', 'running']).toContain(stepStatuses(atCrash)['c']);
      expect(executions(names)).toEqual({ a: 1, b: 1, c: 0, d: 0 });

      const resumed = await sluice(['run', '--resume', id]);
      expect(resumed.code, describeResult(resumed)).toBe(0);
      const after = await status(id);
      expect(after.status).toBe('succeeded');
      expect(stepStatuses(after)).toEqual({ a: 'succeeded', b: 'succeeded', c: 'succeeded', d: 'succeeded' });
      expect(executions(names)).toEqual({ a: 1, b: runsOfB, c: 1, d: 1 });
      expect(after.steps.find((s) => s.name === 'b')!.attempts).toBe(runsOfB);
    }, 120_000);
  });

  it('resume after kill -9 during a long command does not wait for the 30 s lease', async () => {
    const pidFile = path.join(tmp.dir, 'long.pid');
    // The first execution records its PID and sleeps for two minutes; a re-execution finishes at once.
    const long = `if [ -f "${pidFile}" ]; then echo again; else echo $$ > "${pidFile}"; sleep 120; fi`;
    const file = writePipeline('long', { first: step('first', [], 0), long: step('long', ['first'], 0, long), last: step('last', ['long'], 0) });
    const child = startCli(['run', file, ...storeArgs()], { cwd: tmp.dir, env: { MARKERS: markers } });
    await waitFor('the long command to start', () => existsSync(pidFile) && countLines(pidFile) === 1, 60_000, 10);
    trackGroupsFrom(pidFile);
    process.kill(child.pid!, 'SIGKILL');
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });

    const id = await onlyRunId();
    expect(stepStatuses(await status(id))).toMatchObject({ first: 'succeeded', long: 'running', last: 'pending' });
    const resumed = await sluice(['run', '--resume', id]);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    // The dead worker's lease (30 s) is not waited out: its PID is gone, so the attempt is reaped at once. (Under
    // the lease by a margin a loaded machine cannot eat: resuming takes well under a second on a quiet one.)
    expect(resumed.ms).toBeLessThan(25_000);
    expect(resumed.stdout).toMatch(/step\.queued +long {2}\(lease expired\)|step\.started +long {2}attempt 2/);
    const after = await status(id);
    expect(after.status).toBe('succeeded');
    expect(stepStatuses(after)).toEqual({ first: 'succeeded', long: 'succeeded', last: 'succeeded' });
    expect(executions(['first', 'long', 'last'])).toEqual({ first: 1, long: 2, last: 1 });
    console.log(`resume after kill -9 during a 120 s command took ${resumed.ms} ms`);
  }, 120_000);
});
