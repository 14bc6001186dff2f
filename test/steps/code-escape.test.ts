import { afterAll, describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/core/errors.js';
import { createCodeStep, type CodeConfig } from '../../src/steps/code/code-step.js';
import { createTestContext } from '../fixtures/steps/step-context.js';

/**
 * Attempts to break out of the `code` sandbox. Each must be contained (a value computed inside the sandbox,
 * or a clean SluiceError), and the host must stay healthy: the last test runs normal code afterwards.
 */

const step = createCodeStep();

function run(config: CodeConfig): Promise<unknown> {
  return step.execute(createTestContext(process.cwd(), { input: { secret: 'only data' } }).ctx, config);
}

/**
 * The error `config` fails with. Unless the test sets one, the time limit is far beyond the default 1 s: the
 * caps under test must stop the code, not a loaded machine's clock.
 */
async function failure(config: CodeConfig): Promise<SluiceError> {
  const outcome = await run({ timeout: '30s', ...config }).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  return outcome.error as SluiceError;
}

const hostGlobals = globalThis as Record<string, unknown>;

afterAll(() => {
  // Nothing done inside may leak into the host realm.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(hostGlobals.escaped).toBeUndefined();
});

describe('code sandbox: no host objects', () => {
  it('has no process, require, module or Buffer', async () => {
    const output = await run({
      code: 'return [typeof process, typeof require, typeof module, typeof Buffer, typeof setTimeout, typeof fetch]',
    });
    expect(output).toEqual(['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined']);
  });

  it('cannot import a module dynamically', async () => {
    const output = await run({
      code: 'let result = "pending"; import("node:fs").then(() => { result = "loaded" }, (e) => { result = String(e) }); return result',
    });
    // The import never resolves to a host module; no job queue runs, so it stays pending or fails.
    expect(output).not.toBe('loaded');
    const error = await failure({ code: 'return import.meta' });
    expect(error.message).toContain('SyntaxError');
  });

  it('finds only the sandbox realm through globalThis, sloppy this and Function("return this")', async () => {
    const output = await run({
      code: `
        function sloppy() { return this; }
        const viaFunction = Function('return this')();
        const viaIndirectEval = (0, eval)('this');
        const globals = Object.getOwnPropertyNames(globalThis);
        return {
          same: sloppy() === globalThis && viaFunction === globalThis && viaIndirectEval === globalThis,
          process: typeof viaFunction.process,
          hostish: globals.filter((name) => ['process', 'require', 'module', 'Buffer', 'fs', 'child_process', 'std', 'os'].includes(name)),
        };`,
    });
    expect(output).toEqual({ same: true, process: 'undefined', hostish: [] });
  });

  it('gets nothing from constructor chains', async () => {
    const output = await run({
      code: `
        const viaObject = ({}).constructor.constructor('return typeof process')();
        const viaInput = input.constructor.constructor('return typeof require')();
        const viaArrow = (() => 0).constructor('return this')() === globalThis;
        const viaConsole = console.log.constructor('return typeof process')();
        return [viaObject, viaInput, viaArrow, viaConsole];`,
    });
    expect(output).toEqual(['undefined', 'undefined', true, 'undefined']);
  });

  it('receives input as plain data with no functions attached', async () => {
    const output = await run({
      code: 'return [Object.getPrototypeOf(input) === Object.prototype, Object.keys(input), typeof input.secret]',
    });
    expect(output).toEqual([true, ['secret'], 'string']);
  });

  it('cannot pollute host prototypes', async () => {
    const output = await run({
      code: `
        Object.prototype.polluted = 1;
        Array.prototype.polluted = 1;
        input.__proto__.polluted = 1;
        globalThis.escaped = true;
        return { polluted: ({}).polluted };`,
    });
    expect(output).toEqual({ polluted: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(hostGlobals.escaped).toBeUndefined();
  });

  it('returns an own __proto__ key as data, not as a prototype', async () => {
    const output = (await run({ code: 'return JSON.parse(\'{"__proto__": {"polluted": 1}}\')' })) as Record<string, unknown>;
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('cannot tamper with the driver in a way the host trusts', async () => {
    const output = await run({ code: 'JSON.stringify = () => "{\\"ok\\": \\"forged\\"}"; return "real"' });
    expect(output).toBe('real');
  });
});

describe('code sandbox: resource exhaustion', () => {
  it('stops an infinite loop', async () => {
    expect((await failure({ code: 'while (true) {}', timeout: 200 })).code).toBe('STEP_TIMEOUT');
  });

  it('stops while(true){} in batch mode', async () => {
    expect((await failure({ code: 'while (true) {}', items: [1, 2, 3], timeout: 200 })).code).toBe('STEP_TIMEOUT');
  });

  it('stops a catastrophic regular expression', async () => {
    const error = await failure({ code: 'return /^(a+)+$/.test("a".repeat(40) + "b")', timeout: 200 });
    expect(error.code).toBe('STEP_TIMEOUT');
  });

  it('contains a recursion bomb', async () => {
    const error = await failure({ code: 'function f() { return f() + 1 } return f()' });
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('stack overflow');
  });

  it('contains deeply nested source that would recurse in the parser', async () => {
    const error = await failure({ code: 'return eval("(".repeat(100000) + "1" + ")".repeat(100000))' });
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('stack overflow');
  });

  it('contains deeply nested JSON in and out', async () => {
    const error = await failure({
      code: 'return JSON.parse("[".repeat(100000) + "1" + "]".repeat(100000))',
    });
    expect(error.message).toContain('stack overflow');
  });

  it.each([
    ['an array of objects', 'const a = []; for (;;) a.push({ a: 1, b: [1, 2, 3] })'],
    ['many large strings', 'const a = []; for (;;) a.push("x".repeat(1e6) + a.length)'],
    ['array buffers', 'const a = []; for (;;) a.push(new ArrayBuffer(1e6))'],
    ['one huge array', 'return new Array(1e9).fill(0)'],
    ['a string doubling', 'let s = "x"; for (;;) s = s + s'],
  ])('contains a memory bomb: %s', async (_name, code) => {
    const before = process.memoryUsage().rss;
    // A time limit a loaded machine does not reach first: the memory limit is what must stop these.
    const error = await failure({ code, timeout: '30s' });
    // The WASM memory is capped at the limit (64 MiB) plus overhead; uncapped, these reach 2 GiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toMatch(/memory limit|string too long|invalid array length/);
  });

  it('refuses a huge output with a clear error', async () => {
    const error = await failure({ code: 'return "z".repeat(5 * 1024 * 1024)', timeout: '30s' });
    expect(error.details).toMatchObject({ reason: 'output_too_large' });
    expect(error.message).toContain('exceeds max_output of 1048576 bytes');
  });

  it('refuses a huge batch output', async () => {
    const error = await failure({ code: 'return "z".repeat(1000)', items: Array.from({ length: 2000 }, (_, i) => i) });
    expect(error.details).toMatchObject({ reason: 'output_too_large' });
  });

  it('floods no more than the capped console lines', async () => {
    const logs: string[] = [];
    const ctx = createTestContext(process.cwd(), { log: (_stream, line) => logs.push(line) }).ctx;
    await step.execute(ctx, { code: 'for (let i = 0; i < 2000; i++) console.log("x".repeat(100000)); return 1', timeout: '30s' });
    expect(logs.length).toBeLessThanOrEqual(1001);
    expect(Math.max(...logs.map((line) => line.length))).toBeLessThanOrEqual(8 * 1024);
  });
});

describe('code sandbox: caps that hold against tampering', () => {
  it('refuses a body that closes the function it is wrapped in', async () => {
    const error = await failure({ code: '}); globalThis.x = 1; (function () { return "escaped"' });
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('code must be a function body');
  });

  it('cuts a huge message thrown from outside the wrapper', async () => {
    const error = await failure({ code: '}); throw new Error("t".repeat(5e6)); (function () {', memory_limit: '256MiB' });
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message.length).toBeLessThan(2_000);
    expect(error.message).toContain('more characters cut');
  });

  it('cuts a huge thrown string and a huge error name', async () => {
    const thrown = await failure({ code: 'throw "s".repeat(5e6)', memory_limit: '256MiB' });
    expect(thrown.message.length).toBeLessThan(2_000);
    const named = await failure({ code: 'const e = new Error("x"); e.name = "N".repeat(5e6); throw e', memory_limit: '256MiB' });
    expect(named.message.length).toBeLessThan(2_000);
  });

  it('holds its time limit and the line cap however much it logs', async () => {
    const logs: string[] = [];
    const ctx = createTestContext(process.cwd(), { log: (_stream, line) => logs.push(line) }).ctx;
    const code = 'String.prototype.slice = function () { return String(this) }; const line = "z".repeat(2e6); for (;;) console.log(line)';
    const error = await step.execute(ctx, { code, timeout: 300 }).then(
      () => undefined,
      (err: SluiceError) => err,
    );
    expect(error?.code).toBe('STEP_TIMEOUT');
    expect(logs.length).toBeLessThanOrEqual(1001);
    expect(Math.max(...logs.map((line) => line.length))).toBeLessThan(8 * 1024 + 100);
  }, 30_000);

  it('cuts console lines on the host even when String.prototype.slice is replaced', async () => {
    const logs: string[] = [];
    const ctx = createTestContext(process.cwd(), { log: (_stream, line) => logs.push(line) }).ctx;
    const code = 'String.prototype.slice = function () { return String(this) }; Array.prototype.join = function () { return "j".repeat(1e6) }; console.log("y".repeat(1e6)); return 1';
    expect(await step.execute(ctx, { code })).toBe(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.length).toBeLessThan(8 * 1024 + 100);
  });
});

describe('code sandbox: host health afterwards', () => {
  it('still runs normal code, in single and batch mode', async () => {
    expect(await run({ code: 'return { value: input.secret.toUpperCase() }' })).toEqual({ value: 'ONLY DATA' });
    expect(await run({ code: 'return $json * 2', items: [1, 2, 3] })).toEqual([2, 4, 6]);
    expect(typeof process.memoryUsage).toBe('function');
  });
});
