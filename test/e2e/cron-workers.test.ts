/**
 * Cron triggers fired by `sluice worker` processes: two workers on one store fire a schedule of every second,
 * and each slot starts exactly one run, with no slot skipped. Needs dist/: `npm run build`.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { Engine } from '../../src/engine/engine.js';
import { builtinStepTypes } from '../../src/steps/builtin.js';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';
import { exited, killSpawned, startCli, tempDir, waitFor } from '../support/cli.js';
import { postgresDisabled } from '../support/postgres.js';
import { usePostgresCli } from '../support/postgres-cli.js';

/** Distinct slots to see fired before the workers stop. */
const SLOTS = 4;

async function register(url: string): Promise<void> {
  const store = await openStore(url);
  const engine = new Engine({ store, steps: builtinStepTypes() });
  try {
    const spec = { name: 'every-second', triggers: [{ cron: '* * * * * *' }], steps: { s: { uses: 'command', with: { run: 'true' } } } };
    await engine.registerPipeline(normalizePipeline(spec, { stepTypes: engine.steps }));
  } finally {
    await engine.close();
  }
}

/** The slot of every cron run, oldest first. */
async function slots(store: Store): Promise<string[]> {
  const runs = await store.listRuns({ pipeline: 'every-second', limit: 1000 });
  return runs.map((r) => (r.input as { slot: string }).slot).sort();
}

async function twoWorkersFireEachSlotOnce(url: string, cwd: string): Promise<void> {
  await register(url);
  const workers: ChildProcess[] = [0, 1].map(() => startCli(['worker', '--concurrency', '2', '--store', url], { cwd }));
  for (const w of workers) {
    w.stdout?.resume();
    w.stderr?.resume();
  }
  const store = await openStore(url);
  try {
    await waitFor(`${SLOTS} slots fired`, async () => (await slots(store)).length >= SLOTS || undefined, 60_000, 100);
    for (const w of workers) w.kill('SIGTERM');
    for (const w of workers) await exited(w);
    const fired = await slots(store);
    // One run per slot, and every second between the first and the last slot fired.
    expect(new Set(fired).size).toBe(fired.length);
    const span = (Date.parse(fired.at(-1)!) - Date.parse(fired[0]!)) / 1000 + 1;
    expect(fired.length).toBe(span);
  } finally {
    await store.close();
  }
}

describe('cron triggers in sluice worker', () => {
  afterEach(() => killSpawned());

  it('two workers on one SQLite file fire each slot exactly once', async () => {
    const tmp = tempDir('sluice-cron-workers-');
    try {
      await twoWorkersFireEachSlotOnce(`sqlite:${path.join(tmp.dir, 's.db')}`, tmp.dir);
    } finally {
      tmp.cleanup();
    }
  }, 90_000);

  describe.skipIf(postgresDisabled())('on postgres', () => {
    const pgCli = usePostgresCli('sluice-pg-cron-');
    it('two workers on one database fire each slot exactly once (the leader fires)', async () => {
      await twoWorkersFireEachSlotOnce(pgCli.url, pgCli.dir);
    }, 90_000);
  });
});
