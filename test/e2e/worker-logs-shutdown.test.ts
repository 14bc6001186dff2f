/**
 * `sluice worker` logs what an operator must see as JSON lines on stderr (retries, failures, dead letters, with the
 * run id, pipeline, step and attempt), honours SLUICE_LOG_LEVEL, and on SIGTERM logs its shutdown and hands the
 * attempts still running at the end of `--grace` back at once instead of leaving them to lease expiry. Runs the CLI
 * from source (tsx), so it does not depend on a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, openStore, type Engine } from '../../src/index.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { REPO_ROOT, waitFor } from '../support/cli.js';

const children: ChildProcess[] = [];
const engines: Engine[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const e of engines.splice(0)) await e.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcess;
  /** The JSON log lines printed so far. */
  lines(): Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts `sluice worker`; TMPDIR (where the machine-wide record of command process groups lives) is the test's own. */
function startWorker(store: string, args: string[], env: Record<string, string>, verb = 'worker'): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), '--store', store, verb, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code, signal) => {
      if (code !== 0) process.stderr.write(`sluice worker exited with ${code ?? signal}:\n${stderr}\n`);
      resolve(code);
    }),
  );
  const lines = () =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, exited };
}

/** A SQLite store in a fresh folder with one pipeline of one command step, and an engine (no worker) on it. */
async function setUp(name: string, step: Record<string, unknown>): Promise<{ store: string; engine: Engine; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-worker-logs-'));
  dirs.push(dir);
  const store = `sqlite:${join(dir, 's.db')}`;
  const engine = createEngine({ store: await openStore(store), artifactsDir: join(dir, 'artifacts') });
  engines.push(engine);
  await engine.registerPipeline(normalizePipeline({ name, steps: { work: { uses: 'command', ...step } } }, { stepTypes: engine.steps }));
  return { store, engine, dir };
}

describe('sluice worker logs and shutdown', () => {
  it('logs each failed attempt and the dead letter at warn and above, with run id, pipeline, step and attempt', async () => {
    const { store, engine, dir } = await setUp('flaky', { with: { run: 'echo boom >&2; exit 3' }, retry: { attempts: 2, backoff: 'fixed', delay: '10ms' } });
    const { run } = await engine.startRun('flaky');
    const worker = startWorker(store, [], { SLUICE_LOG_LEVEL: 'warn', TMPDIR: dir });
    const dead = await waitFor('the dead letter line', () => worker.lines().find((l) => l['dead_letter'] === true), 45_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    expect(dead).toMatchObject({ level: 50, run_id: run.id, pipeline: 'flaky' });
    const lines = worker.lines();
    expect(lines.find((l) => l['msg'] === 'step attempt failed; retrying')).toMatchObject({ level: 40, run_id: run.id, pipeline: 'flaky', step: 'work', attempt: 1, error_code: 'COMMAND_FAILED' });
    expect(lines.find((l) => l['msg'] === 'step failed')).toMatchObject({ level: 40, run_id: run.id, pipeline: 'flaky', step: 'work', attempt: 2, error_code: 'COMMAND_FAILED' });
    // SLUICE_LOG_LEVEL=warn: nothing below warn, not even the shutdown lines.
    expect(lines.filter((l) => (l['level'] as number) < 40)).toEqual([]);
  }, 60_000);

  it('on SIGTERM logs the shutdown and hands the attempt still running after --grace back at once', async () => {
    const { store, engine, dir } = await setUp('slow', { with: { run: 'sleep 60' } });
    const { run } = await engine.startRun('slow');
    const worker = startWorker(store, ['--grace', '300ms'], { TMPDIR: dir });
    await waitFor('the step to run', async () => (await engine.store.listSteps(run.id)).find((s) => s.status === 'running'), 45_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    const lines = worker.lines();
    expect(lines.find((l) => l['msg'] === 'shutdown started')).toMatchObject({ level: 30, signal: 'SIGTERM', grace_ms: 300, running: 1 });
    expect(lines.find((l) => l['msg'] === 'shutdown finished')).toMatchObject({ level: 30, handed_back: 1 });
    // Handed back, not left running until its 30 s lease expires: queued for its next attempt now.
    const [step] = await engine.store.listSteps(run.id);
    expect(step).toMatchObject({ name: 'work', status: 'queued', attempts: 2 });
  }, 60_000);

  it('sluice serve: on SIGTERM logs the shutdown and hands the attempt still running after --grace back at once', async () => {
    const { store, engine, dir } = await setUp('slow', { with: { run: 'sleep 60' } });
    const { run } = await engine.startRun('slow');
    const server = startWorker(store, ['--port', '0', '--grace', '300ms'], { TMPDIR: dir }, 'serve');
    await waitFor('the step to run', async () => (await engine.store.listSteps(run.id)).find((s) => s.status === 'running'), 45_000);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);

    const lines = server.lines();
    expect(lines.find((l) => l['msg'] === 'shutdown started')).toMatchObject({ level: 30, signal: 'SIGTERM', grace_ms: 300 });
    expect(lines.find((l) => l['msg'] === 'shutdown finished')).toMatchObject({ level: 30, handed_back: 1 });
    const [step] = await engine.store.listSteps(run.id);
    expect(step).toMatchObject({ name: 'work', status: 'queued', attempts: 2 });
  }, 60_000);
});
