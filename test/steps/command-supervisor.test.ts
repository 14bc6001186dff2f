/**
 * A `command` step's processes never outlive the worker process that started them, even when that process is
 * killed with SIGKILL; and a worker taking over can wait until a dead worker's processes are gone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endOrphanedCommands } from '../../src/steps/command/command-registry.js';

const fixture = fileURLToPath(new URL('../fixtures/steps/commands/worker-process.ts', import.meta.url));
const workers: ChildProcess[] = [];
const started: number[] = [];
let dir: string;
let savedTmp: string | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-supervisor-'));
  // The machine-wide record of command groups lives under TMPDIR: this test keeps its own.
  savedTmp = process.env['TMPDIR'];
  process.env['TMPDIR'] = dir;
});

afterEach(() => {
  for (const w of workers.splice(0)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
  rmSync(dir, { recursive: true, force: true });
});

function readPids(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Running and not a zombie (a dead process whose parent, here an init, has not reaped it yet). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Starts a worker process running one command step (tree.sh: four processes in one group) and waits until all run. */
async function startWorker(mode: '' | 'stubborn', killGrace: string): Promise<{ worker: ChildProcess; pids: number[] }> {
  const pidsFile = path.join(dir, 'pids');
  const worker = spawn(process.execPath, ['--import', 'tsx', fixture, pidsFile, mode, killGrace], {
    env: { ...process.env, TMPDIR: dir },
    stdio: 'ignore',
  });
  workers.push(worker);
  await waitFor(() => readPids(pidsFile).length === 4, 'the command tree to start');
  const pids = readPids(pidsFile);
  started.push(...pids);
  expect(pids.every(isRunning)).toBe(true);
  return { worker, pids };
}

async function killWorker(worker: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  worker.kill('SIGKILL');
  await exited;
}

describe('command step: the worker process dies', () => {
  it('kill -9 of the worker ends every process of the step', async () => {
    const { worker, pids } = await startWorker('', '5s');
    await killWorker(worker);
    await waitFor(() => !pids.some(isRunning), 'every process of the step to end after its worker died');
  });

  it('kill -9 of the worker ends a step that ignores SIGTERM after its kill_grace', async () => {
    const { worker, pids } = await startWorker('stubborn', '300ms');
    await killWorker(worker);
    await waitFor(() => !pids.some(isRunning), 'every process of the step to end after its worker died');
  });

  it("a worker taking over waits until a dead worker's step processes are gone", async () => {
    const { worker, pids } = await startWorker('stubborn', '1s');
    await killWorker(worker);
    await endOrphanedCommands();
    expect(pids.filter(isRunning)).toEqual([]);
    // Its record on this machine is gone with it.
    expect(readdirSync(path.join(dir, `sluice-${process.getuid!()}`, 'commands'))).toEqual([]);
  });

  it('a record that a killed worker left half-written is removed; one a live process is writing is kept', async () => {
    const registry = path.join(dir, `sluice-${process.getuid!()}`, 'commands');
    mkdirSync(registry, { recursive: true, mode: 0o700 });
    // A process that has exited: its PID names no running process.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(path.join(registry, `4242.json.${gone}.tmp`), '', { mode: 0o600 });
    writeFileSync(path.join(registry, `4243.json.${process.pid}.tmp`), '{"pgid":', { mode: 0o600 });
    await endOrphanedCommands();
    expect(readdirSync(registry)).toEqual([`4243.json.${process.pid}.tmp`]);
  });

  it('a group started too late to be reported is found by its mark and ended with the rest', async () => {
    const watchdog = spawn(process.execPath, [fileURLToPath(new URL('../../src/steps/command/watchdog.cjs', import.meta.url)), 'test-mark', '300'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    workers.push(watchdog);
    const pidsFile = path.join(dir, 'pids');
    const tree = fileURLToPath(new URL('../fixtures/steps/commands/tree.sh', import.meta.url));
    // Never reported to the watchdog: only the mark in its environment says whose it is.
    const unreported = spawn('sh', [tree, pidsFile, 'stubborn'], { detached: true, stdio: 'ignore', env: { ...process.env, SLUICE_WATCHDOG: 'test-mark' } });
    unreported.unref();
    await waitFor(() => readPids(pidsFile).length === 4, 'the command tree to start');
    const pids = readPids(pidsFile);
    started.push(...pids);
    watchdog.stdin!.end();
    await waitFor(() => !pids.some(isRunning), 'every process of the unreported group to end');
  });
});
