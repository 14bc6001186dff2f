/** Catch-up of cron slots missed while no process fired schedules, per trigger `catchup`. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { CronTriggers } from '../../src/engine/cron-triggers.js';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

const MINUTE = 60_000;

describe('cron catch-up', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** Fires one slot at 00:00:30 (a minutely trigger), then nothing runs until `downMinutes` later. */
  async function missed(catchup: 'none' | 'latest' | 'all' | undefined, downMinutes: number): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-catchup-'));
    dirs.push(dir);
    const store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    let now = Date.parse('2026-01-01T00:00:30Z');
    const steps = testSteps({ noop: () => null });
    const engine = new Engine({ store, steps, clock: { now: () => now }, artifactsDir: join(dir, 'a') });
    try {
      const trigger = { cron: '* * * * *', ...(catchup === undefined ? {} : { catchup }) };
      await engine.registerPipeline(normalizePipeline({ name: 'm', triggers: [trigger], steps: { s: { uses: 'function', with: { fn: 'noop' } } } }, { stepTypes: steps }));
      const first = new CronTriggers(engine);
      await first.start();
      first.stop();
      now = Date.parse('2026-01-01T00:01:10Z');
      expect(await first.tick(now)).toBe(1);
      // Nothing runs; a process starts later and ticks once.
      now += downMinutes * MINUTE;
      const second = new CronTriggers(engine);
      await second.start();
      second.stop();
      await second.tick(now + 1000);
      const runs = await store.listRuns({ pipeline: 'm', limit: 1000 });
      return runs.map((r) => (r.input as { slot: string }).slot).sort();
    } finally {
      await engine.close();
    }
  }

  it('fires the latest missed slot by default, none with catchup: none, each (bounded) with catchup: all', async () => {
    // Fired at 00:01; down until 00:06:10: 00:02 .. 00:06 were missed. (300 minutes down: 00:02 .. 05:01.)
    expect(await missed(undefined, 5)).toEqual(['2026-01-01T00:01:00.000Z', '2026-01-01T00:06:00.000Z']);
    expect(await missed('none', 5)).toEqual(['2026-01-01T00:01:00.000Z']);
    expect(await missed('all', 5)).toEqual(['00:01', '00:02', '00:03', '00:04', '00:05', '00:06'].map((t) => `2026-01-01T${t}:00.000Z`));
    // `all` fires at most the latest 100 slots.
    const many = await missed('all', 300);
    expect(many).toHaveLength(101);
    expect(many[1]).toBe('2026-01-01T03:22:00.000Z');
    expect(many.at(-1)).toBe('2026-01-01T05:01:00.000Z');
  });
});
