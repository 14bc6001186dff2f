import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { z } from 'zod';
import { code, command, createEngine, map, openStore, pipeline, type Engine } from '../../src/index.js';

describe('typed pipelines in code', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function engineOnSqlite(): Promise<Engine> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-typed-'));
    const store = await openStore(`sqlite:${join(dir, 'sluice.db')}`);
    const engine = createEngine({ store, artifacts: join(dir, 'artifacts'), onError: () => undefined });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => engine.close());
    return engine;
  }

  it('runs inline functions and built-in steps and returns the final steps outputs', async () => {
    const engine = await engineOnSqlite();
    const users = pipeline('users', { input: z.object({ team: z.string(), size: z.number().default(3) }) })
      .step('fetch', async ({ input }) => ({ users: Array.from({ length: input.size }, (_, i) => `${input.team}-${i}`) }))
      .step('score', { needs: ['fetch'] }, async ({ steps }) => steps.fetch.users.length * 10)
      .step('shout', code<string>({ code: 'return steps.fetch.users.join(",").toUpperCase()' }), { needs: ['fetch'] })
      .step('echo', command({ run: ['node', '-e', 'process.stdout.write("hi")'] }), { needs: ['score'] });
    const out = await engine.run(users, { team: 'core' });
    expect(out).toEqual({ shout: 'CORE-0,CORE-1,CORE-2', echo: { exit_code: 0, stdout: 'hi' } });
  });
});
