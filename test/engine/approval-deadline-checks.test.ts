/** The approval-deadline checks run while the engine's worker runs, and stop with it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An engine on a fresh SQLite store whose deadline checks are counted; closed and removed after `use`. */
async function withCountedChecks(use: (engine: Engine, checks: () => number) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-deadline-checks-'));
  const store = new SqliteStore({ path: join(dir, 's.db') });
  await store.migrate();
  let checks = 0;
  const due = store.waits.dueApprovals.bind(store.waits);
  store.waits.dueApprovals = async (now, limit) => {
    checks += 1;
    return due(now, limit);
  };
  const engine = new Engine({ store, steps: testSteps({}), artifactsDir: join(dir, 'a') });
  try {
    await use(engine, () => checks);
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until the count of checks passes `from` (a check ran). */
async function nextCheck(checks: () => number, from: number): Promise<void> {
  for (let i = 0; i < 400 && checks() === from; i++) await pause(5);
  expect(checks()).toBeGreaterThan(from);
}

/** No check runs for a while after this. */
async function noMoreChecks(checks: () => number): Promise<void> {
  const at = checks();
  await pause(100);
  expect(checks()).toBe(at);
}

describe('approval-deadline checks', () => {
  it('stop when the worker stops, so a stopped engine no longer reads its store (which another may close)', async () => {
    await withCountedChecks(async (engine, checks) => {
      engine.startWorker({ pollMs: 5 });
      await nextCheck(checks, 0);
      await engine.stopWorker();
      await noMoreChecks(checks);
    });
  });

  it('stop when the worker is interrupted, and a worker started again runs one set of checks, not two', async () => {
    await withCountedChecks(async (engine, checks) => {
      engine.startWorker({ pollMs: 5 });
      await nextCheck(checks, 0);
      await engine.interruptWorker();
      await noMoreChecks(checks);
      engine.startWorker({ pollMs: 5 });
      await nextCheck(checks, checks());
      await engine.stopWorker();
      await noMoreChecks(checks);
    });
  });
});
