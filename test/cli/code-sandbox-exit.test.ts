/**
 * `sluice run` and `sluice worker` with `code` steps exit cleanly, and leave no sandbox process behind. Runs the CLI
 * from source (tsx), so it does not depend on a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRunning, REPO_ROOT, waitFor } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-code-exit-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function sluice(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), '--store', `sqlite:${join(dir, 's.db')}`, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

/** Child processes of `pid`, from each of its threads' lists in /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

describe.runIf(process.platform === 'linux')('code steps and the CLI process', () => {
  writeFileSync(join(dir, 'p.yaml'), 'name: p\nsteps:\n  a: { uses: code, with: { code: "return 1" } }\n  b: { needs: [a], uses: code, with: { code: "return steps.a + 1" } }\n');

  it('sluice run ends as soon as its run ends, though its sandbox process would idle for 10 minutes', async () => {
    const run = sluice(['run', join(dir, 'p.yaml')], { SLUICE_CODE_IDLE_TIMEOUT: '10m' });
    const seen = new Set<number>();
    const watch = setInterval(() => childrenOf(run.pid!).forEach((pid) => seen.add(pid)), 20);
    const { code, output } = await exited(run);
    clearInterval(watch);
    expect(code, output).toBe(0);
    expect([...seen].filter(isRunning)).toEqual([]);
  }, 90_000);

  it('sluice worker exits 0 on SIGTERM after running code steps, and its sandbox process with it', async () => {
    const worker = sluice(['worker']);
    const done = exited(worker);
    const queued = await exited(sluice(['run', join(dir, 'p.yaml'), '--detach', '--force']));
    expect(queued.code, queued.output).toBe(0);
    const runId = queued.output.trim().split(/\s+/).at(-1)!;
    const seen = new Set<number>();
    const watch = setInterval(() => childrenOf(worker.pid!).forEach((pid) => seen.add(pid)), 20);
    for (let status = ''; status !== 'succeeded'; ) {
      const shown = await exited(sluice(['--json', 'status', runId]));
      status = (JSON.parse(shown.output) as { status?: string }).status ?? '';
      expect(['queued', 'running', 'succeeded']).toContain(status);
    }
    clearInterval(watch);
    // The run's sandbox process idles, kept for the next step, until the worker stops.
    const sandboxes = [...seen];
    expect(sandboxes.filter(isRunning).length).toBeGreaterThan(0);
    worker.kill('SIGTERM');
    const { code, output } = await done;
    expect(code, output).toBe(0);
    await waitFor('the sandbox process to end with its worker', () => !sandboxes.some(isRunning), 60_000);
  }, 90_000);
});
