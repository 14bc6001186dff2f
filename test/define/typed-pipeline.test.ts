import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { z } from 'zod';
import { childPipeline, code, command, createEngine, map, openStore, pipeline, type Engine } from '../../src/index.js';
import { storeTargets } from '../support/store-targets.js';

describe.each(storeTargets())('typed pipelines in code on $name', (target) => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => target.cleanup());

  async function engineOnStore(): Promise<Engine> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-typed-'));
    const store = await openStore(await target.url(dir));
    const engine = createEngine({ store, artifacts: join(dir, 'artifacts'), onError: () => undefined });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => engine.close());
    return engine;
  }

  it('runs inline functions and built-in steps and returns the final steps outputs', async () => {
    const engine = await engineOnStore();
    const users = pipeline('users', { input: z.object({ team: z.string(), size: z.number().default(3) }) })
      .step('fetch', async ({ input }) => ({ users: Array.from({ length: input.size }, (_, i) => `${input.team}-${i}`) }))
      .step('score', { needs: ['fetch'] }, async ({ steps }) => steps.fetch.users.length * 10)
      .step('shout', code<string>({ code: 'return steps.fetch.users.join(",").toUpperCase()' }), { needs: ['fetch'] })
      .step('echo', command({ run: ['node', '-e', 'process.stdout.write("hi")'] }), { needs: ['score'] });
    const out = await engine.run(users, { team: 'core' });
    expect(out).toEqual({ shout: 'CORE-0,CORE-1,CORE-2', echo: { exit_code: 0, stdout: 'hi' } });
  });

  it('gives a new version when a step function source changes, and the same one when nothing changed', async () => {
    const engine = await engineOnStore();
    const a = pipeline<{ n: number }>('versions').step('double', ({ input }) => input.n * 2);
    const same = pipeline<{ n: number }>('versions').step('double', ({ input }) => input.n * 2);
    const edited = pipeline<{ n: number }>('versions').step('double', ({ input }) => input.n * 3);
    const v1 = await engine.registerPipeline(a);
    expect((await engine.registerPipeline(same)).version).toBe(v1.version);
    const v2 = await engine.registerPipeline(edited);
    expect(v2.version).toBe(v1.version + 1);
    // The cached result of the first source is not served for the edited one.
    expect(await engine.run(a, { n: 5 })).toEqual({ double: 10 });
    expect(await engine.run(edited, { n: 5 })).toEqual({ double: 15 });
    expect(await engine.run(a, { n: 5 })).toEqual({ double: 10 });
  });

  it('checks the input with a Standard Schema (valibot) before a run starts, naming the key', async () => {
    const engine = await engineOnStore();
    let ran = 0;
    const p = pipeline('valibot-input', { input: v.object({ id: v.pipe(v.string(), v.minLength(2)) }) }).step('use', ({ input }) => {
      ran += 1;
      return input.id.length;
    });
    await expect(engine.run(p, { id: 'x' })).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('id:') });
    expect(ran).toBe(0);
    expect(await engine.run(p, { id: 'xyz' })).toEqual({ use: 3 });
  });

  it('fails a step whose output does not match its output schema, with the step failure as the error', async () => {
    const engine = await engineOnStore();
    const p = pipeline('bad-output').step('make', { output: v.object({ total: v.number() }) }, () => ({ total: 'many' }) as never);
    await expect(engine.run(p, undefined)).rejects.toMatchObject({ code: 'OUTPUT_INVALID', message: expect.stringMatching(/step make: OUTPUT_INVALID: output of step make of pipeline bad-output is invalid:\s+total:/) });
  });

  it('refuses at registration a needs naming no step, a needs cycle and a bad option, naming pipeline, step and key', async () => {
    const engine = await engineOnStore();
    const typo = pipeline('typo').step('a', () => 1).step('b', { needs: ['c' as never] }, () => 2);
    await expect(engine.registerPipeline(typo)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/pipeline typo \(TypeScript\).*steps\.b\.needs/) });
    // Only JavaScript (or a cast) can write a cycle: TypeScript lets needs name earlier steps only.
    const cycle = pipeline('cycle').step('a', { needs: ['b' as never] }, () => 1).step('b', { needs: ['a'] }, () => 2);
    await expect(engine.registerPipeline(cycle)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/pipeline cycle \(TypeScript\).*cycle/s) });
    const badRetry = pipeline('bad-retry').step('a', { retry: { attempts: -1 } }, () => 1);
    await expect(engine.registerPipeline(badRetry)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('steps.a.retry.attempts') });
    expect(() => pipeline('unknown-option').step('a', { retries: 3 } as never, () => 1)).toThrow(/pipeline unknown-option, step "a": unknown option "retries"/);
    expect(() => pipeline('dup').step('a', () => 1).step('a' as never, () => 2)).toThrow(/step "a": a step with this name is already defined/);
    expect(await engine.store.listPipelines()).toEqual([]);
  });

  it('returns a declared output, resolves artifacts, maps over items and runs a child pipeline', async () => {
    const engine = await engineOnStore();
    const child = pipeline<{ word: string }>('child').step('len', ({ input }) => input.word.length);
    const big = 'x'.repeat(300 * 1024);
    const parent = pipeline<{ word: string; words: string[] }>('parent')
      .step('blob', () => ({ big }))
      .step('lengths', map<string, number>({ items: '${{ input.words }}', step: (word, index) => word.length + index }))
      .step('child', childPipeline(child, { input: { word: 'abc' } }), { needs: ['lengths'] })
      .step('sameInput', child)
      .output(({ steps }) => ({ size: steps.blob.big.length, lengths: steps.lengths.items, childLen: steps.child.outputs.len, sameLen: steps.sameInput.outputs.len }));
    // The child is registered with its parent.
    expect(await engine.run(parent, { word: 'four', words: ['a', 'bb', 'ccc'] })).toEqual({ size: big.length, lengths: [1, 3, 5], childLen: 3, sameLen: 4 });
  });

  it('cancels the run when the signal aborts or the timeout passes', async () => {
    const engine = await engineOnStore();
    const slow = pipeline('slow').step('wait', ({ signal }) => new Promise((resolve) => signal.addEventListener('abort', resolve)));
    await expect(engine.run(slow, undefined, { timeout: 200 })).rejects.toMatchObject({ code: 'RUN_TIMEOUT' });
    const controller = new AbortController();
    const running = engine.run(slow, undefined, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    await expect(running).rejects.toThrow('caller gave up');
    const runs = await engine.store.listRuns({ pipeline: 'slow', limit: 10 });
    for (const run of runs) expect((await engine.waitForRun(run.id)).status).toBe('cancelled');
  });
});
