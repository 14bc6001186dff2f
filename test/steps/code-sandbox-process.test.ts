import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/core/errors.js';
import { createCodeStep } from '../../src/steps/code/code-step.js';
import { sandboxPool } from '../../src/steps/code/sandbox-pool.js';
import { createTestContext } from '../fixtures/steps/step-context.js';
import { isRunning, waitFor } from '../support/cli.js';

const fixture = join(fileURLToPath(new URL('.', import.meta.url)), '../fixtures/steps/code/engine-process.ts');
const step = createCodeStep();

describe.runIf(process.platform === 'linux')('code sandbox processes', () => {
  it("start with none of the engine's environment variables but what a process needs", async () => {
    process.env['SLUICE_PROBE_SECRET'] = 'hunter2';
    let environ = '';
    const { ctx } = createTestContext(process.cwd(), { log: () => (environ = readFileSync(`/proc/${sandboxPool().pids[0]}/environ`, 'utf8')) });
    expect(await step.execute(ctx, { code: 'console.log("up"); return 1' })).toBe(1);
    expect(environ).not.toBe('');
    expect(environ).not.toContain('hunter2');
    delete process.env['SLUICE_PROBE_SECRET'];
  });

  it('kill -9 of the engine ends its sandbox process, even one running a step', async () => {
    const engine = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        engine.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        engine.once('exit', (code) => reject(new Error(`the engine exited with ${code}`)));
      });
      const sandbox = Number(line.split(' ')[0]);
      expect(isRunning(sandbox)).toBe(true);
      engine.kill('SIGKILL');
      await waitFor('the sandbox process to end after its engine died', () => !isRunning(sandbox));
    } finally {
      engine.kill('SIGKILL');
    }
  }, 30_000);

  it('replaces a sandbox process that died: the step running in it fails, the next one runs', async () => {
    const { ctx } = createTestContext(process.cwd(), { log: () => process.kill(sandboxPool().pids[0]!, 'SIGKILL') });
    const error = await step.execute(ctx, { code: 'console.log("go"); while (true) {}', timeout: '60s' }).then(
      () => undefined,
      (err: SluiceError) => err,
    );
    expect(error?.code).toBe('STEP_FAILED');
    expect(error?.details).toMatchObject({ reason: 'sandbox_crashed' });
    expect(error?.message).toContain('the sandbox process exited with SIGKILL');
    expect(await step.execute(createTestContext(process.cwd()).ctx, { code: 'return 40 + 2' })).toBe(42);
  }, 30_000);

  it('ends the process of a cancelled step, and every process on close', async () => {
    const pool = sandboxPool();
    let running: number[] = [];
    const { ctx, controller } = createTestContext(process.cwd(), {
      log: () => {
        running = pool.pids;
        controller.abort();
      },
    });
    const error = await step.execute(ctx, { code: 'console.log("go"); while (true) {}', timeout: '60s' }).then(
      () => undefined,
      (err: SluiceError) => err,
    );
    expect(error?.code).toBe('CANCELLED');
    expect(running.length).toBeGreaterThan(0);
    await waitFor('the cancelled sandbox process to end', () => !running.some(isRunning));
    expect(await step.execute(createTestContext(process.cwd()).ctx, { code: 'return 7' })).toBe(7);
    const idle = pool.pids;
    expect(idle.length).toBeGreaterThan(0);
    await pool.close();
    expect(pool.processCount).toBe(0);
    await waitFor('the idle sandbox processes to end', () => !idle.some(isRunning));
  }, 30_000);
});
