import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { createCodeStep } from '../../src/steps/code/code-step.js';
import { sandboxPoolSettings } from '../../src/steps/code/sandbox-pool-options.js';
import { configureSandboxPool, sandboxPool } from '../../src/steps/code/sandbox-pool.js';
import { createTestContext } from '../fixtures/steps/step-context.js';
import { sqliteBackend } from '../support/backends.js';

const step = createCodeStep();

function run(code: string): Promise<unknown> {
  return step.execute(createTestContext(process.cwd()).ctx, { code });
}

/** Session id and niceness of a process (or of one thread, as `self/task/TID`), from /proc. */
function schedOf(who: string): { session: number; nice: number } {
  const stat = readFileSync(`/proc/${who}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { session: Number(fields[3]), nice: Number(fields[16]) };
}

async function until(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
  return check();
}

describe('code sandbox pool: engine option codeSandbox', () => {
  const backend = sqliteBackend();
  afterAll(() => backend.cleanup());

  it('refuses bad values when the engine is created, naming the option', async () => {
    const store = await backend.create();
    const engine = (codeSandbox: unknown) => () => new Engine({ store, steps: builtinStepTypes(), codeSandbox: codeSandbox as never });
    expect(engine({ size: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('codeSandbox.size must be a positive integer') }));
    expect(engine({ idleTimeout: 'soon' })).toThrow(/codeSandbox\.idleTimeout: invalid duration "soon"/);
    expect(engine({ idleTimeout: -1 })).toThrow(/codeSandbox\.idleTimeout/);
    expect(engine({ nice: 20 })).toThrow(/codeSandbox\.nice must be an integer from 0 to 19 .*, got "20"/);
    expect(engine({ nice: 2.5 })).toThrow(/codeSandbox\.nice/);
    expect(engine({ threads: 2 })).toThrow(/codeSandbox\.threads is not an option/);
    await store.close();
  });

  it('refuses bad environment values, naming the variable', () => {
    expect(() => sandboxPoolSettings({ SLUICE_CODE_WORKERS: 'many' })).toThrow(/SLUICE_CODE_WORKERS must be a positive integer/);
    expect(() => sandboxPoolSettings({ SLUICE_CODE_IDLE_TIMEOUT: '5 minutes' })).toThrow(/SLUICE_CODE_IDLE_TIMEOUT: invalid duration/);
    expect(() => sandboxPoolSettings({ SLUICE_CODE_NICE: '-5' })).toThrow(/SLUICE_CODE_NICE must be an integer from 0 to 19/);
    expect(sandboxPoolSettings({ SLUICE_CODE_WORKERS: '3', SLUICE_CODE_IDLE_TIMEOUT: '2m', SLUICE_CODE_NICE: '0' })).toEqual({ size: 3, idleMs: 120_000, nice: 0 });
    expect(sandboxPoolSettings({ SLUICE_CODE_IDLE_TIMEOUT: '1500' }).idleMs).toBe(1500);
  });

  it.runIf(process.platform === 'linux')('runs sandboxes in processes of their own session, at lower priority than the engine', async () => {
    configureSandboxPool({ nice: 7 });
    expect(await run('return 1')).toBe(1);
    const [pid] = sandboxPool().pids;
    expect(pid).toBeDefined();
    // The engine keeps its priority; the sandbox process, idle and kept for the next step, has the niceness asked for
    // and a session of its own (the scheduler then shares the CPU between the two sessions, not among all threads).
    expect(schedOf(`self/task/${process.pid}`).nice).toBe(0);
    expect(schedOf(String(pid))).toEqual({ session: pid, nice: 7 });
  });

  it('ends idle sandbox threads after idleTimeout', async () => {
    configureSandboxPool({ idleTimeout: '30s' });
    expect(await run('return 2')).toBe(2);
    expect(sandboxPool().processCount).toBeGreaterThan(0);
    configureSandboxPool({ idleTimeout: 0 });
    expect(await run('return 3')).toBe(3);
    expect(await until(() => sandboxPool().processCount === 0)).toBe(true);
  });
});
