import { readdirSync, readFileSync } from 'node:fs';
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

/** Niceness of each thread of this process, from /proc (field 19 of a task's stat). */
function threadNiceness(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
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

  it.runIf(process.platform === 'linux')('runs sandboxes in threads of lower priority than the event loop', async () => {
    configureSandboxPool({ nice: 7 });
    expect(threadNiceness()).not.toContain(7);
    expect(await run('return 1')).toBe(1);
    // The main thread keeps its priority; the sandbox thread, still alive and idle, has the niceness asked for.
    expect(threadNiceness()[0]).toBe(0);
    expect(threadNiceness()).toContain(7);
  });

  it('ends idle sandbox threads after idleTimeout', async () => {
    configureSandboxPool({ idleTimeout: '30s' });
    expect(await run('return 2')).toBe(2);
    expect(sandboxPool().threadCount).toBeGreaterThan(0);
    configureSandboxPool({ idleTimeout: 0 });
    expect(await run('return 3')).toBe(3);
    expect(await until(() => sandboxPool().threadCount === 0)).toBe(true);
  });
});
