import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, openStore, pipeline, type Engine } from '../../src/index.js';

/** Flow rules on a pipeline defined in code, run with `engine.run` (the library path). */
describe('flow rules of a typed pipeline', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function engine(): Promise<Engine> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-flow-typed-'));
    const e = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), artifacts: join(dir, 'artifacts'), onError: () => undefined });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => e.close());
    return e;
  }

  it('engine.run obeys rate_limit: the second run in the window is refused with RATE_LIMITED', async () => {
    const e = await engine();
    const limited = pipeline<{ customer: string }>('limited', { rate_limit: { limit: 1, period: '1h', key: '${{ input.customer }}' } }).step('hello', ({ input }) => `hi ${input.customer}`);
    expect(await e.run(limited, { customer: 'acme' })).toEqual({ hello: 'hi acme' });
    await expect(e.run(limited, { customer: 'acme' })).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await e.run(limited, { customer: 'globex' })).toEqual({ hello: 'hi globex' });
  });

  it('the rules are written into the pipeline spec as in YAML', () => {
    const p = pipeline('spaced', { throttle: { limit: 5, period: '1s' }, singleton: { mode: 'queue' } }).step('a', () => 1);
    expect(p.toSpec()).toMatchObject({ throttle: { limit: 5, period: '1s' }, singleton: { mode: 'queue' } });
    // @ts-expect-error an unknown singleton mode does not compile
    pipeline('bad', { singleton: { mode: 'sometimes' } });
  });
});
