/** The approval-deadline checks run while the engine's worker runs, and stop with it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { testSteps } from '../support/test-steps.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('approval-deadline checks', () => {
  it('stop when the worker stops, so a stopped engine no longer reads its store (which another may close)', async () => {
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
      engine.startWorker({ pollMs: 5 });
      for (let i = 0; i < 400 && checks === 0; i++) await pause(5);
      expect(checks).toBeGreaterThan(0);
      await engine.stopWorker();
      const atStop = checks;
      await pause(100);
      expect(checks).toBe(atStop);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('stop when the worker is interrupted, and a worker started again runs one set of checks, not two', async () => {
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
      engine.startWorker({ pollMs: 5 });
      for (let i = 0; i < 400 && checks === 0; i++) await pause(5);
      await engine.interruptWorker();
      const atInterrupt = checks;
      await pause(100);
      expect(checks).toBe(atInterrupt);
      engine.startWorker({ pollMs: 5 });
      for (let i = 0; i < 400 && checks === atInterrupt; i++) await pause(5);
      await engine.stopWorker();
      const atStop = checks;
      await pause(100);
      expect(checks).toBe(atStop);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
