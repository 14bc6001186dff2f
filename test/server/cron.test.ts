import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { CronTriggers } from '../../src/server/cron-triggers.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { attributePipelines } from '../../src/attributes/extension.js';

describe('cron triggers', () => {
  const dirs: string[] = [];
  const engines: Engine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function engineOn(path: string, clock: { now(): number }): Promise<Engine> {
    const store = new SqliteStore({ path });
    await store.migrate();
    const engine = new Engine({ store, steps: builtinStepTypes({ functions: { noop: () => null } }), clock, extensions: [attributePipelines()] });
    engines.push(engine);
    return engine;
  }

  it('fires each slot once in its time zone, even with two server processes on one store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cron-'));
    dirs.push(dir);
    let now = Date.parse('2026-01-01T00:00:30Z');
    const clock = { now: () => now };
    const a = await engineOn(join(dir, 's.db'), clock);
    const b = await engineOn(join(dir, 's.db'), clock);
    const spec = (name: string, cron: string) => ({ name, triggers: [{ cron, timezone: 'Europe/Berlin' }], steps: { s: { uses: 'function', with: { name: 'noop' } } } });
    await a.registerPipeline(normalizePipeline(spec('minutely', '* * * * *'), { stepTypes: a.steps }));
    await a.registerPipeline(normalizePipeline(spec('nightly', '0 2 * * *'), { stepTypes: a.steps }));
    const ta = new CronTriggers(a);
    const tb = new CronTriggers(b);
    await ta.start();
    await tb.start();
    ta.stop();
    tb.stop();
    now = Date.parse('2026-01-01T01:00:10Z');
    const [fromA, fromB] = await Promise.all([ta.tick(now), tb.tick(now)]);
    const minutely = await a.store.listRuns({ pipeline: 'minutely', limit: 1000 });
    expect(minutely).toHaveLength(60);
    expect(fromA + fromB).toBe(61);
    expect(new Set(minutely.map((r) => (r.input as { slot: string }).slot)).size).toBe(60);
    const nightly = await a.store.listRuns({ pipeline: 'nightly' });
    // 02:00 in Berlin is 01:00 UTC in winter.
    expect(nightly.map((r) => r.input)).toEqual([{ trigger: 'cron', cron: '0 2 * * *', timezone: 'Europe/Berlin', slot: '2026-01-01T01:00:00.000Z' }]);
    expect(await ta.tick(now)).toBe(0);
    expect(await tb.tick(now + 1000)).toBe(0);
  });
});

describe('cron triggers of attribute pipelines', () => {
  it("runs the attribute pipelines of a dataset that are due together in Kahn's order, each after the one it reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cron-attr-'));
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    let now = Date.parse('2026-01-01T00:00:30Z');
    const engine = new Engine({ store, steps: builtinStepTypes(), clock: { now: () => now }, artifactsDir: join(dir, 'artifacts'), extensions: [attributePipelines()] });
    try {
      await store.putDataset('items', {}, now);
      await store.putRecords('items', [{ id: 'a', data: { n: 2 } }, { id: 'b', data: { n: 5 } }], now);
      const cron = [{ cron: '0 * * * *' }];
      // Registered reader first: the order comes from the fields, not from registration.
      await engine.registerPipeline(normalizePipeline({ name: 'quadruple', dataset: 'items', target: 'quad', source: { fields: ['double'] }, triggers: cron, steps: { q: { uses: 'code', with: { code: 'return $json.double * 2' } } } }, { stepTypes: engine.steps }));
      await engine.registerPipeline(normalizePipeline({ name: 'double', dataset: 'items', target: 'double', source: { fields: ['n'] }, triggers: cron, steps: { d: { uses: 'code', with: { code: 'return $json.n * 2' } } } }, { stepTypes: engine.steps }));
      engine.startWorker();
      const triggers = new CronTriggers(engine);
      await triggers.start();
      triggers.stop();
      now = Date.parse('2026-01-01T01:00:05Z');
      expect(await triggers.tick(now)).toBe(1);
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && (await store.listRuns({ pipeline: 'quadruple', status: 'succeeded' })).length === 0; ) await new Promise((r) => setTimeout(r, 25));
      const [double] = await store.listRuns({ pipeline: 'double' });
      const [quadruple] = await store.listRuns({ pipeline: 'quadruple' });
      expect(double!.input).toMatchObject({ trigger: 'cron' });
      expect(double!.status).toBe('succeeded');
      expect(quadruple!.status).toBe('succeeded');
      expect((await store.getAttributeValues('items', 'b'))).toMatchObject({ double: { value: 10 }, quad: { value: 20 } });
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
