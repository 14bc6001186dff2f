import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { createFunctionStep, type FunctionContext } from '../../src/steps/function/function-step.js';
import { createTestContext } from '../fixtures/steps/step-context.js';

const fixtures = fileURLToPath(new URL('../fixtures/steps/functions/', import.meta.url));

function context() {
  return createTestContext(fixtures);
}

describe('function step: modules', () => {
  it('loads a TypeScript module without a build step and calls its default export with args', async () => {
    const { ctx } = context();
    const output = await createFunctionStep().execute(ctx, { module: './greet.ts', args: { name: 'Ada' } });
    expect(output).toEqual({ greeting: 'hello Ada', step: 'work' });
  });

  it('calls a named async export of a module given without ./', async () => {
    const { ctx } = context();
    const output = await createFunctionStep().execute(ctx, { module: 'greet.ts', export: 'shout', args: { name: 'ada' } });
    expect(output).toBe('ADA');
  });

  it('loads a plain JavaScript module', async () => {
    const { ctx } = context();
    const output = await createFunctionStep().execute(ctx, { module: './plain.js', export: 'add', args: { a: 2, b: 3 } });
    expect(output).toBe(5);
  });

  it('loads a CommonJS TypeScript module', async () => {
    const { ctx } = context();
    const output = await createFunctionStep().execute(ctx, { module: './legacy.cts', export: 'triple', args: 7 });
    expect(output).toBe(21);
  });

  it('accepts an absolute module path', async () => {
    const { ctx } = context();
    const output = await createFunctionStep().execute(ctx, { module: path.join(fixtures, 'plain.js'), args: { a: 1, b: 1 } });
    expect(output).toBe(2);
  });

  it('resolves a bare package specifier from baseDir', async () => {
    // The fixture package reaches itself by name (package self-reference), so no node_modules is needed.
    const { ctx } = createTestContext(path.join(fixtures, 'self-ref'));
    const output = await createFunctionStep().execute(ctx, { module: 'sluice-fixture-self-ref', export: 'describe' });
    expect(output).toBe('package function called by work');
  });

  it("runs a module's top level once across executions", async () => {
    const globals = globalThis as { __sluiceCounterLoads?: number };
    const before = globals.__sluiceCounterLoads ?? 0;
    const step = createFunctionStep();
    const outputs: unknown[] = [];
    for (let i = 0; i < 3; i += 1) outputs.push(await step.execute(context().ctx, { module: './counter.mts' }));
    expect(globals.__sluiceCounterLoads).toBe(before + 1);
    expect(outputs).toEqual([before + 1, before + 1, before + 1]);
  });

  it('turns an undefined return value into null', async () => {
    const { ctx } = context();
    expect(await createFunctionStep().execute(ctx, { module: './greet.ts', export: 'nothing' })).toBeNull();
  });
});

describe('function step: registered functions', () => {
  it('calls a function registered in code with the step context and args', async () => {
    const seen: FunctionContext[] = [];
    const step = createFunctionStep({
      score: async (fctx) => {
        seen.push(fctx);
        fctx.log('info', 'scoring');
        return { score: (fctx.args as { base: number }).base + 1 };
      },
    });
    const { ctx, logs } = context();
    const output = await step.execute(ctx, { name: 'score', args: { base: 41 } });
    expect(output).toEqual({ score: 42 });
    expect(seen[0]).toMatchObject({ step: 'work', run: { id: 'run-1', attempt: 2 }, input: { document: 'doc-1' } });
    expect(seen[0]?.signal).toBe(ctx.signal);
    expect(logs).toEqual([{ stream: 'info', line: 'scoring' }]);
  });

  it('prefers name over module when both are given', async () => {
    const step = createFunctionStep({ pick: () => 'registered' });
    expect(await step.execute(context().ctx, { name: 'pick', module: './greet.ts' })).toBe('registered');
  });

  it('is reachable through the builtin registry', async () => {
    const registry = builtinStepTypes({ functions: { hello: () => 'hi' } });
    expect([...registry.keys()]).toEqual(expect.arrayContaining(['command', 'function', 'http', 'llm']));
    expect(await registry.get('function')?.execute(context().ctx, { name: 'hello' })).toBe('hi');
  });

  it('lets an error thrown by the function pass through unchanged', async () => {
    const boom = new Error('boom');
    const step = createFunctionStep({
      explode: () => {
        throw boom;
      },
    });
    await expect(step.execute(context().ctx, { name: 'explode' })).rejects.toBe(boom);
    const fromModule = createFunctionStep().execute(context().ctx, { module: './greet.ts', export: 'fail' });
    await expect(fromModule).rejects.toThrow('greet failed on purpose');
  });

  it('rejects with the abort reason even when the function ignores its signal', async () => {
    const step = createFunctionStep({ hang: () => new Promise(() => {}) });
    const { ctx, controller } = context();
    const running = step.execute(ctx, { name: 'hang' });
    const reason = new Error('timed out');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
  });

  it('keeps the output of a synchronous function that returned, and awaits a returned thenable', async () => {
    const { ctx, controller } = context();
    const step = createFunctionStep({
      // Finished before anything could cancel it: its output stands.
      finished: () => {
        controller.abort(new Error('too late'));
        return 'done';
      },
      // A thenable that is not a native promise is awaited like one.
      thenable: () => ({ then: (resolve: (v: unknown) => void) => resolve('from thenable') }),
    });
    expect(await step.execute(ctx, { name: 'finished' })).toBe('done');
    expect(await step.execute(context().ctx, { name: 'thenable' })).toBe('from thenable');
  });

  it('rejects with CANCELLED when aborted without an Error reason', async () => {
    const step = createFunctionStep({ hang: () => new Promise(() => {}) });
    const { ctx, controller } = context();
    const running = step.execute(ctx, { name: 'hang' });
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

describe('function step: load errors', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a missing module file', { module: './missing.ts' }, /module file not found: .*missing\.ts/],
    ['a missing package', { module: 'sluice-no-such-package' }, /cannot load module "sluice-no-such-package"/],
    ['a missing export', { module: './greet.ts', export: 'nope' }, /greet\.ts has no export "nope"/],
    ['a non-function export', { module: './greet.ts', export: 'notAFunction' }, /"notAFunction" .*greet\.ts is not a function/],
    ['a module whose top level throws', { module: './broken.ts' }, /broken\.ts: .*broken fixture module/],
    ['an unknown registered name', { name: 'ghost' }, /no function registered under name "ghost"/],
  ];

  it.each(cases)('fails with MODULE_LOAD_FAILED for %s', async (_label, config, message) => {
    const failure = createFunctionStep().execute(context().ctx, config);
    await expect(failure).rejects.toMatchObject({ code: 'MODULE_LOAD_FAILED', retryable: false });
    await expect(failure).rejects.toThrow(message);
  });
});

describe('function step: config schema', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(createFunctionStep().configSchema);

  it('accepts name or module with optional export and args', () => {
    expect(validate({ name: 'score', args: [1, 2] })).toBe(true);
    expect(validate({ module: './fns.ts', export: 'score', args: { a: 1 } })).toBe(true);
  });

  it('rejects a config with neither name nor module, or with unknown keys', () => {
    expect(validate({ export: 'score' })).toBe(false);
    expect(validate({ name: 'score', modul: './typo.ts' })).toBe(false);
  });
});
