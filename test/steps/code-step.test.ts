import { afterAll, describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/core/errors.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { parseByteSize } from '../../src/steps/code/byte-size.js';
import { createCodeStep, type CodeConfig } from '../../src/steps/code/code-step.js';
import type { StepContext } from '../../src/steps/step-type.js';
import { createTestContext, linesOf } from '../fixtures/steps/step-context.js';
import { sqliteBackend } from '../support/backends.js';

const step = createCodeStep();

function context(overrides: Partial<StepContext> = {}) {
  return createTestContext(process.cwd(), { input: { n: 21, name: 'Ada' }, steps: { typing: { rows: 7 } }, ...overrides });
}

function run(config: CodeConfig, overrides: Partial<StepContext> = {}): Promise<unknown> {
  return step.execute(context(overrides).ctx, config);
}

/** The error `work` rejects with; fails the test when it resolves. */
async function failure(work: Promise<unknown>): Promise<SluiceError> {
  const outcome = await work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  return outcome.error as SluiceError;
}

describe('code step: single mode', () => {
  it('returns what the body returns, computed from input, steps and run', async () => {
    const output = await run({ code: 'return { value: steps.typing.rows * 2, who: input.name, run: run.id }' });
    expect(output).toEqual({ value: 14, who: 'Ada', run: 'run-1' });
  });

  it('exposes $json as the input and $meta as run metadata', async () => {
    const output = await run({ code: 'return [$json.n, $index, $meta]' });
    expect(output).toEqual([21, null, { run_id: 'run-1', attempt: 2, pipeline: 'demo', version: 1, step: 'work' }]);
  });

  it('turns a missing return into null', async () => {
    expect(await run({ code: 'const x = 1;' })).toBeNull();
  });

  it('is registered as a built-in step type', () => {
    expect(builtinStepTypes().get('code')?.type).toBe('code');
  });

  it('starts every execution from a fresh global scope', async () => {
    await run({ code: 'globalThis.leftover = 1; Array.prototype.extra = 2; return 1' });
    expect(await run({ code: 'return [typeof leftover, typeof [].extra]' })).toEqual(['undefined', 'undefined']);
  });

  it('has Date and Math.random', async () => {
    const [now, random] = (await run({ code: 'return [Date.now(), Math.random()]' })) as [number, number];
    expect(Math.abs(now - Date.now())).toBeLessThan(60_000);
    expect(random).toBeGreaterThanOrEqual(0);
  });
});

describe('code step: errors', () => {
  it("reports a runtime error with the line and column in the user's code", async () => {
    const error = await failure(run({ code: 'const a = 1;\nconst b = null;\n  return b.missing;' }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("TypeError: cannot read property 'missing' of null");
    expect(error.message).toContain('line 3, column');
    expect(error.details).toMatchObject({ reason: 'code_threw', line: 3 });
  });

  it('reports a thrown Error with its own message and line', async () => {
    const error = await failure(run({ code: '\n\nthrow new Error("bad record")' }));
    expect(error.message).toContain('Error: bad record (line 3, column');
  });

  it('reports a syntax error with its line and column', async () => {
    const error = await failure(run({ code: 'const ok = 1;\nconst broken = ;' }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('SyntaxError');
    expect(error.details).toMatchObject({ line: 2, column: 16 });
  });

  it('reports a thrown non-error value', async () => {
    const error = await failure(run({ code: 'throw "plain string"' }));
    expect(error.message).toContain('code threw: plain string');
  });

  it('fails with STEP_TIMEOUT when the time limit passes', async () => {
    const error = await failure(run({ code: 'while (true) {}', timeout: '100ms' }));
    expect(error.code).toBe('STEP_TIMEOUT');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('100 ms');
  });

  it('cannot catch the timeout inside the sandbox', async () => {
    const error = await failure(run({ code: 'for (;;) { try { while (true) {} } catch (e) {} }', timeout: 100 }));
    expect(error.code).toBe('STEP_TIMEOUT');
  });

  it('fails with an out-of-memory error over the memory limit', async () => {
    const error = await failure(run({ code: 'const a = []; for (;;) a.push("x".repeat(100000) + a.length);', memory_limit: '8MiB' }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.details).toMatchObject({ reason: 'out_of_memory', memory_limit: 8 * 1024 * 1024 });
    expect(error.message).toContain('memory limit');
  });

  it('refuses output over max_output with a clear error', async () => {
    const error = await failure(run({ code: 'return "x".repeat(2000)', max_output: '1kB' }));
    expect(error.details).toMatchObject({ reason: 'output_too_large', max_output: 1000 });
    expect(error.message).toMatch(/exceeds max_output of 1000 bytes/);
    expect(await run({ code: 'return "x".repeat(900)', max_output: '1kB' })).toHaveLength(900);
  });

  it('counts max_output in UTF-8 bytes', async () => {
    const error = await failure(run({ code: 'return "é".repeat(600)', max_output: 1000 }));
    expect(error.details).toMatchObject({ reason: 'output_too_large' });
  });

  it('fails when the output is not JSON-serializable', async () => {
    const error = await failure(run({ code: 'return { big: 10n }' }));
    expect(error.message).toContain('not JSON-serializable');
  });

  it('does not start when the signal has already aborted', async () => {
    const { ctx, controller } = context();
    controller.abort();
    const error = await failure(step.execute(ctx, { code: 'return 1' }));
    expect(error.code).toBe('CANCELLED');
  });

  it('rejects invalid limits and items as configuration errors', async () => {
    expect((await failure(run({ code: 'return 1', timeout: 'soon' }))).code).toBe('VALIDATION_FAILED');
    expect((await failure(run({ code: 'return 1', memory_limit: '12 parsecs' }))).code).toBe('VALIDATION_FAILED');
    expect((await failure(run({ code: 'return 1', memory_limit: '100kB' }))).message).toContain('between 1 MiB and 1 GiB');
    expect((await failure(run({ code: 'return 1', memory_limit: '4GiB' }))).code).toBe('VALIDATION_FAILED');
    expect((await failure(run({ code: 'return 1', items: 'abc' as unknown as unknown[] }))).code).toBe('VALIDATION_FAILED');
  });
});

describe('code step: console', () => {
  it('maps console methods to the step log, JSON-encoding non-strings', async () => {
    const { ctx, logs } = context();
    await step.execute(ctx, { code: 'console.log("hello", { a: 1 }, 2); console.warn("careful"); console.error("bad"); return 1' });
    expect(linesOf(logs, 'info')).toEqual(['hello {"a":1} 2']);
    expect(linesOf(logs, 'warn')).toEqual(['careful']);
    expect(linesOf(logs, 'error')).toEqual(['bad']);
  });

  it('keeps the log lines written before the code failed', async () => {
    const { ctx, logs } = context();
    await failure(step.execute(ctx, { code: 'console.log("before"); throw new Error("after")' }));
    expect(linesOf(logs, 'info')).toEqual(['before']);
  });

  it('caps how many lines one execution can log', async () => {
    const { ctx, logs } = context();
    // The default 1 s time limit is not what this is about; a loaded machine can take longer.
    await step.execute(ctx, { code: 'for (let i = 0; i < 5000; i++) console.log("line " + i); return 1', timeout: '30s' });
    expect(linesOf(logs, 'info')).toHaveLength(1000);
    expect(linesOf(logs, 'warn')).toEqual([expect.stringContaining('beyond 1000 lines dropped')]);
  });

  it('caps how many characters one execution can log, before they leave the sandbox thread', async () => {
    const { ctx, logs } = context();
    // 500 lines of 8 KiB: 4 MiB, under the line cap; only the first 1 Mi characters cross, the last line cut.
    await step.execute(ctx, { code: 'const l = "x".repeat(8192); for (let i = 0; i < 500; i++) console.log(l); return 1', timeout: '30s' });
    const kept = linesOf(logs, 'info');
    expect(kept).toHaveLength(128);
    expect(kept.slice(0, 127).every((l) => l.length === 8192)).toBe(true);
    expect(kept.join('').replace(/\.\.\. \(\d+ more characters cut\)$/, '')).toHaveLength(1024 * 1024);
    expect(linesOf(logs, 'warn')).toEqual([expect.stringContaining('beyond 1048576 characters dropped')]);
  });
});

describe('code step: promises', () => {
  it('awaits a returned promise and an async body, and outputs the resolved value', async () => {
    expect(await run({ code: 'return Promise.resolve(5)' })).toBe(5);
    expect(await run({ code: 'const v = await Promise.resolve(input.n); return { doubled: v * 2 }' })).toEqual({ doubled: 42 });
    expect(await run({ code: 'return (async () => { await null; return [1, 2]; })()' })).toEqual([1, 2]);
  });

  it('fails with the error of a rejected promise, with its line', async () => {
    const error = await failure(run({ code: 'await null;\nthrow new Error("rejected late")' }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('Error: rejected late (line 2');
    expect((await failure(run({ code: 'return Promise.reject("nope")' }))).message).toContain('code threw: nope');
  });

  it('fails a promise that can never settle with an error naming the step', async () => {
    const error = await failure(run({ code: 'return new Promise(() => {})' }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.details).toMatchObject({ reason: 'promise_never_settled' });
    expect(error.message).toContain('code step work');
    expect(error.message).toContain('never settled');
  });

  it('times out promise jobs that never end', async () => {
    const error = await failure(run({ code: 'const spin = () => Promise.resolve().then(spin); return spin()', timeout: 100 }));
    expect(error.code, error.message).toBe('STEP_TIMEOUT');
  });

  it('awaits each item of a batch, keeping item errors in place', async () => {
    const code = 'await null; if ($json === 2) throw new Error("bad " + $index); return $json * 10';
    expect(await run({ code, items: [1, 2, 3], on_item_error: 'continue' })).toEqual([
      10,
      { error: { message: 'Error: bad 1', line: 1, column: expect.any(Number) } },
      30,
    ]);
    const error = await failure(run({ code, items: [1, 2, 3] }));
    expect(error.message).toContain('on item 1: Error: bad 1');
  });
});

describe('code step: batch mode', () => {
  const items = [
    { id: 1, title: 'Alpha', price: 2 },
    { id: 2, title: 'Beta', price: 3.5 },
  ];

  it('runs the body once per item and returns the results in order', async () => {
    const output = await run({ code: 'return { value: $json.title.toLowerCase(), score: $json.price * 2, at: $index }', items });
    expect(output).toEqual([
      { value: 'alpha', score: 4, at: 0 },
      { value: 'beta', score: 7, at: 1 },
    ]);
  });

  it('shares state across items within one batch (one entry into the sandbox)', async () => {
    const output = await run({ code: 'globalThis.count = (globalThis.count ?? 0) + 1; return count', items: [1, 2, 3] });
    expect(output).toEqual([1, 2, 3]);
  });

  it('fails the whole step naming the item index by default', async () => {
    const error = await failure(run({ code: 'if ($index === 1) throw new Error("bad item");\nreturn $json', items: [1, 2, 3] }));
    expect(error.code).toBe('STEP_FAILED');
    expect(error.message).toContain('on item 1: Error: bad item (line 1');
    expect(error.details).toMatchObject({ index: 1, line: 1 });
  });

  it('records a per-item error and continues when on_item_error is continue', async () => {
    const output = await run({
      code: 'const n = $json.n;\nreturn n.toFixed(1);',
      items: [{ n: 1 }, {}, { n: 3 }],
      on_item_error: 'continue',
    });
    expect(output).toEqual([
      '1.0',
      { error: { message: "TypeError: cannot read property 'toFixed' of undefined", line: 2, column: expect.any(Number) } },
      '3.0',
    ]);
  });

  it('returns an empty array for no items', async () => {
    expect(await run({ code: 'return 1', items: [] })).toEqual([]);
  });

  it('times out a batch that never ends', async () => {
    const error = await failure(run({ code: 'if ($index === 2) while (true) {}\nreturn 1', items: [1, 2, 3, 4], timeout: 100 }));
    expect(error.code).toBe('STEP_TIMEOUT');
  });

  it('fails the batch on out of memory even when items may fail', async () => {
    const error = await failure(
      run({
        code: 'const a = []; for (;;) a.push("y".repeat(100000) + a.length);',
        items: [1, 2],
        memory_limit: '8MiB',
        on_item_error: 'continue',
      }),
    );
    expect(error.details).toMatchObject({ reason: 'out_of_memory' });
  });
});

describe('code step: resources', () => {
  it('keeps process memory bounded over 2,000 executions', async () => {
    const code = 'const rows = []; for (let i = 0; i < 200; i++) rows.push({ i, s: "v" + i }); return rows.length';
    for (let i = 0; i < 200; i += 1) await run({ code });
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 2_000; i += 1) expect(await run({ code })).toBe(200);
    const grownBytes = process.memoryUsage().rss - before;
    expect(grownBytes).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('parseByteSize', () => {
  it('reads bytes and decimal and binary units', () => {
    expect(parseByteSize(1234)).toBe(1234);
    expect(parseByteSize('1234')).toBe(1234);
    expect(parseByteSize('2kB')).toBe(2000);
    expect(parseByteSize('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseByteSize('1.5 KiB')).toBe(1536);
    expect(() => parseByteSize('-1')).toThrow(/invalid size/);
    expect(() => parseByteSize('5 bananas')).toThrow(/invalid size/);
  });
});

describe('code step in the engine', () => {
  const backend = sqliteBackend();
  afterAll(() => backend.cleanup());

  it('runs the example of PRODUCT.md and a batch over a templated upstream list', async () => {
    const steps = builtinStepTypes();
    const store = await backend.create();
    const engine = new Engine({ store, steps, onError: (e) => console.error(e) });
    try {
      const spec = {
        name: 'scoring',
        steps: {
          typing: { uses: 'code', with: { code: 'return { rows: input.rows.length, rowsList: input.rows }' } },
          score: { needs: ['typing'], uses: 'code', with: { code: 'return { value: steps.typing.rows * 2 }' } },
          each: {
            needs: ['typing'],
            uses: 'code',
            with: { code: 'return $json.toUpperCase() + $index', items: '${{ steps.typing.rowsList }}' },
          },
        },
      };
      await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20, reapMs: 50 });
      const { run } = await engine.startRun('scoring', { input: { rows: ['a', 'b', 'c', 'd', 'e', 'f'] } });
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      const outputs = Object.fromEntries((await store.listSteps(run.id)).map((step) => [step.name, step.output]));
      expect(outputs.score).toEqual({ value: 12 });
      expect(outputs.each).toEqual(['A0', 'B1', 'C2', 'D3', 'E4', 'F5']);
    } finally {
      await engine.close();
    }
  });
});
