import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/core/errors.js';
import { createCodeStep, type CodeConfig } from '../../src/steps/code/code-step.js';
import { USER_FILE, wrapUserCode, wrappedFunctionText } from '../../src/steps/code/guest-source.js';
import { configureSandboxPool, SandboxPool, sandboxPool } from '../../src/steps/code/sandbox-pool.js';
import type { SandboxTask } from '../../src/steps/code/sandbox.js';
import type { StepContext } from '../../src/steps/step-type.js';
import { createTestContext } from '../fixtures/steps/step-context.js';
import { isRunning, waitFor } from '../support/cli.js';

const step = createCodeStep();

function run(config: CodeConfig, overrides: Partial<StepContext> = {}): Promise<unknown> {
  return step.execute(createTestContext(process.cwd(), overrides).ctx, config);
}

async function failure(work: Promise<unknown>): Promise<SluiceError> {
  const outcome = await work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  return outcome.error as SluiceError;
}

describe('code sandbox: off the event loop', () => {
  it('serves a timer and an HTTP request on the main thread while a code step spins at its CPU limit', async () => {
    const marks: string[] = [];
    const server = createServer((_req, res) => {
      marks.push('http served');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    let answered!: Promise<unknown>;
    let timerFired!: Promise<void>;
    try {
      // The step's first log line arrives while it spins: from there the main thread must still run callbacks.
      const log = () => {
        marks.push('spinning');
        timerFired = new Promise((resolve) => setTimeout(() => resolve(void marks.push('timer')), 0));
        answered = fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.text());
      };
      const error = await failure(run({ code: 'console.log("start"); while (true) {}', timeout: '3s' }, { log }));
      marks.push('code step ended');
      expect(error.code).toBe('STEP_TIMEOUT');
      await Promise.all([timerFired, answered]);
      expect(marks).toEqual(['spinning', 'timer', 'http served', 'code step ended']);
    } finally {
      server.close();
    }
  });

  it('refuses a pool size that is not a positive integer', () => {
    expect(() => new SandboxPool({ size: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => new SandboxPool({ size: 1.5 })).toThrow(/positive integer/);
  });

  it('runs code steps in parallel up to codeWorkers', async () => {
    configureSandboxPool(2);
    // Both threads are started first, so neither step waits for a thread to load.
    await Promise.all([run({ code: 'return 1' }), run({ code: 'return 2' })]);
    // Each step says it runs, then spins; once both said so (both run at once), both are cancelled.
    const a = createTestContext(process.cwd());
    const b = createTestContext(process.cwd());
    const running = new Set<string>();
    const started = (name: string) => () => {
      running.add(name);
      if (running.size === 2) for (const c of [a, b]) c.controller.abort();
    };
    a.ctx.log = started('a');
    b.ctx.log = started('b');
    const config = { code: 'console.log("in"); while (true) {}', timeout: '5s' };
    const errors = await Promise.all([failure(step.execute(a.ctx, config)), failure(step.execute(b.ctx, config))]);
    expect(errors.map((e) => e.code)).toEqual(['CANCELLED', 'CANCELLED']);
  });
});

describe('code sandbox: limits enforced from outside', () => {
  it('stops one long native call (eval of a huge expression) at the time limit with STEP_TIMEOUT', async () => {
    const error = await failure(run({ code: 'return eval("1+".repeat(3e6) + "1")', timeout: 100, memory_limit: '256MiB' }));
    expect(error.code).toBe('STEP_TIMEOUT');
    expect(error.message).toContain('100 ms');
    // The pool replaced the terminated thread.
    expect(await run({ code: 'return 1 + 1' })).toBe(2);
  });

  it('stops a cancelled step that sits in one long native call', async () => {
    const { ctx, controller } = createTestContext(process.cwd(), { log: () => controller.abort() });
    const error = await failure(step.execute(ctx, { code: 'console.log("go"); return eval("1+".repeat(3e6) + "1")', timeout: '60s', memory_limit: '256MiB' }));
    expect(error.code).toBe('CANCELLED');
  });

  it('refuses input over 16 MiB before it reaches the sandbox', async () => {
    const error = await failure(run({ code: 'return 1' }, { input: { blob: 'b'.repeat(17 * 1024 * 1024) } }));
    expect(error.details).toMatchObject({ reason: 'input_too_large' });
    expect(error.message).toContain('code step work');
  });

  it('returns the WASM memory of large sandboxes once they finish: their process is replaced', async () => {
    const code = 'console.log("allocating"); const a = new Uint8Array(160 * 1024 * 1024).fill(1); return a.length';
    const used: number[] = [];
    const log = () => used.push(...sandboxPool().pids);
    expect(await run({ code, memory_limit: '600MiB', timeout: '30s' }, { log })).toBe(160 * 1024 * 1024);
    expect(used.length).toBeGreaterThan(0);
    // A WASM memory never shrinks while its process lives: the process that grew one exits after its task.
    await waitFor('the grown sandbox process to exit', () => !used.some(isRunning));
    expect(await run({ code: 'return 1 + 1' })).toBe(2);
  });
});

describe('code sandbox: what crosses to the main thread', () => {
  function task(code: string, memory = 256 * 1024 * 1024): SandboxTask {
    return { functionSource: wrapUserCode(code), functionText: wrappedFunctionText(code), fileName: USER_FILE, payload: '{}', timeoutMs: 30_000, memoryBytes: memory, maxOutputChars: 1024 * 1024 };
  }
  const call = { signal: new AbortController().signal, log: () => undefined };

  it('carries a huge thrown message and a huge output out of the sandbox process already cut', async () => {
    const pool = new SandboxPool({ size: 1 });
    try {
      // 50 million characters copied out and sent to the engine stalled its event loop for tens of ms per step.
      const thrown = await pool.run(task('}); throw new Error("t".repeat(5e7)); (function () {'), call);
      expect(thrown).toMatchObject({ status: 'threw', error: { message: expect.stringContaining('more characters cut') } });
      expect(JSON.stringify(thrown).length).toBeLessThan(4_000);
      const output = await pool.run(task('return "z".repeat(5e6)'), call);
      expect(output).toEqual({ status: 'output_too_large', chars: expect.any(Number) });
    } finally {
      await pool.close();
    }
  }, 30_000);
});
