/**
 * A step never runs alongside itself. `sluice run` stopped by SIGINT or SIGTERM ends its steps' processes and
 * hands their attempts back at once; killed by SIGKILL, its steps' processes die with it; either way a
 * `--resume` right after never starts a second copy of a step while the first still runs. Each step appends
 * `start PID` and `end PID` marks to a file, in the order they happen, and the marks of one step must never nest.
 * The CLI that is stopped is the real binary; `status` and the `--resume` after it run in this process.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { isRunning, killSpawned, REPO_ROOT, startCli, tempDir, trackGroup, waitCli, waitFor, type CliResult } from '../support/cli.js';
import { runCliInProcess, runCliJsonInProcess } from '../support/cli-in-process.js';

let tmp: ReturnType<typeof tempDir>;
let store: string;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});

beforeEach(() => {
  tmp = tempDir('sluice-interrupt-');
  store = path.join(tmp.dir, 's.db');
});

afterEach(async () => {
  // Without the fix, steps of a stopped CLI live on: end them by the PIDs they marked.
  for (const pid of markedPids()) trackGroup(groupOf(pid) ?? pid);
  await killSpawned();
  tmp.cleanup();
});

// TMPDIR is where the machine-wide record of command process groups lives: each test keeps its own.
const env = () => ({ MARKS: path.join(tmp.dir, 'marks'), TMPDIR: tmp.dir });
const storeArgs = () => ['--store', `sqlite:${store}`];

function describeResult(r: CliResult): string {
  return `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/**
 * A pipeline of one command step, `work`: its first attempt marks its start and waits (for SIGTERM, which it
 * answers by marking its end, unless `stubborn`: then it ignores SIGTERM); later attempts mark start and end at once.
 */
function writePipeline(options: { stubborn?: boolean; killGrace?: string } = {}): string {
  const onTerm = options.stubborn ? `trap '' TERM` : `trap 'echo "end $$" >> "$MARKS"; exit 143' TERM`;
  // The trap is set before the start mark, so a signal that comes right after it still marks the end. Output goes
  // nowhere: once a killed CLI's pipes are gone, the shell would die of SIGPIPE in its trap, before its end mark.
  const run = [
    'exec >/dev/null 2>&1',
    `if [ "$SLUICE_ATTEMPT" = 1 ]; then ${onTerm}; fi`,
    'echo "start $$" >> "$MARKS"',
    'if [ "$SLUICE_ATTEMPT" = 1 ]; then sleep 60 & wait $!; fi',
    'echo "end $$" >> "$MARKS"',
  ].join('\n');
  const file = path.join(tmp.dir, 'work.yaml');
  const step: Record<string, unknown> = { run };
  if (options.killGrace) step['kill_grace'] = options.killGrace;
  writeFileSync(file, stringify({ name: 'work', steps: { work: { uses: 'command', with: step } } }));
  return file;
}

function marks(): Array<{ mark: 'start' | 'end'; pid: number }> {
  const file = path.join(tmp.dir, 'marks');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [mark, pid] = line.split(' ');
      return { mark: mark as 'start' | 'end', pid: Number(pid) };
    });
}

function markedPids(): number[] {
  return [...new Set(marks().map((m) => m.pid))];
}

function groupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

/** The [start, end] intervals of the step in mark order; throws when one starts before the previous one ended. */
function intervals(): Array<[number, number]> {
  const done: Array<[number, number]> = [];
  let open: number | undefined;
  for (const { mark, pid } of marks()) {
    if (mark === 'start') {
      if (open !== undefined) throw new Error(`the step started (pid ${pid}) while it still ran (pid ${open}): ${JSON.stringify(marks())}`);
      open = pid;
    } else if (pid === open) {
      done.push([open, pid]);
      open = undefined;
    }
  }
  if (open !== undefined) throw new Error(`the step (pid ${open}) never marked its end: ${JSON.stringify(marks())}`);
  return done;
}

function status(id: string): Promise<{ id: string; status: string; steps: Array<{ name: string; status: string }> }> {
  return runCliJsonInProcess(['status', id, ...storeArgs()], { cwd: tmp.dir });
}

/**
 * Starts `sluice run` on the pipeline and waits until the step's first attempt runs (and the CLI has recorded its
 * process group, which it does in the same tick as it starts it).
 */
async function startStopping(file: string) {
  const child = startCli(['run', file, ...storeArgs()], { cwd: tmp.dir, env: env() });
  const result = waitCli(child, 90_000);
  await waitFor('the step to start', () => marks().length === 1, 60_000);
  // A release that records no groups never gets there: the test then goes on, and shows what that costs.
  const registry = path.join(tmp.dir, `sluice-${process.getuid!()}`, 'commands');
  const groups = () => readdirSync(registry).filter((name) => !name.startsWith('worker-'));
  await waitFor('the step group to be recorded', () => existsSync(registry) && groups().length === 1, 10_000).catch(() => {});
  return { child, result };
}

async function resume(id: string): Promise<CliResult> {
  return runCliInProcess(['run', '--resume', id, ...storeArgs()], { cwd: tmp.dir, env: env() });
}

describe('sluice run stopped by a signal', () => {
  it.each([
    { signal: 'SIGINT' as const, code: 130 },
    { signal: 'SIGTERM' as const, code: 143 },
  ])('$signal: ends the step, hands it back at once, exits $code; --resume runs it again, never alongside itself', async ({ signal, code }) => {
    const { child, result } = await startStopping(writePipeline());
    const [first] = markedPids();
    process.kill(child.pid!, signal);
    const stopped = await result;
    console.log(`${signal}: the CLI exited ${stopped.ms} ms after it started`);
    expect(stopped.code, describeResult(stopped)).toBe(code);
    expect(stopped.stderr).toMatch(/interrupted: run (\S+) stopped; continue it with sluice run --resume \1/);
    // The step's process is gone, and its attempt is queued again (not left running until its lease expires).
    expect(isRunning(first!)).toBe(false);
    const id = /interrupted: run (\S+) stopped/.exec(stopped.stderr)![1]!;
    const atStop = await status(id);
    expect(atStop.status).toBe('running');
    expect(atStop.steps).toMatchObject([{ name: 'work', status: 'queued' }]);

    const resumed = await resume(id);
    console.log(`${signal}: --resume took ${resumed.ms} ms`);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    expect(resumed.stdout).toContain(`run ${id} succeeded`);
    expect(intervals()).toHaveLength(2);
  }, 120_000);

  it('a second SIGINT exits at once, while the first still waits for a step that ignores SIGTERM', async () => {
    const { child, result } = await startStopping(writePipeline({ stubborn: true, killGrace: '60s' }));
    const [first] = markedPids();
    process.kill(child.pid!, 'SIGINT');
    await waitFor('the CLI to say it is stopping', () => isRunning(first!) && child.stderr !== null, 10_000);
    // Sent once the first one is being handled (its message printed), so it is the second one the CLI sees.
    const stopping = await new Promise<boolean>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve(false), 30_000);
      child.stderr!.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('stopping run')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    expect(stopping).toBe(true);
    process.kill(child.pid!, 'SIGINT');
    const stopped = await result;
    expect(stopped.code, describeResult(stopped)).toBe(130);
    // It did not wait for the 60 s grace: the stubborn step still ran when the CLI exited.
    expect(isRunning(first!)).toBe(true);
  }, 120_000);
});

describe('sluice run killed by SIGKILL', () => {
  it('the step dies with it, and a --resume right after never runs the step alongside itself', async () => {
    const { child, result } = await startStopping(writePipeline());
    process.kill(child.pid!, 'SIGKILL');
    const killed = await result;
    expect(killed.signal).toBe('SIGKILL');
    const id = /^run (\S+)/m.exec(killed.stdout)![1]!;
    const resumed = await resume(id);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    expect(resumed.stdout).toContain(`run ${id} succeeded`);
    const runs = intervals();
    expect(runs).toHaveLength(2);
    expect(runs[0]![0]).not.toBe(runs[1]![0]);
  }, 120_000);
});
