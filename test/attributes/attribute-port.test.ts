import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fencedAttributePort } from '../../src/attributes/attribute-port.js';
import { SluiceError } from '../../src/core/errors.js';
import type { AttemptFence } from '../../src/steps/step-type.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { builtinStepTypes, createEngine, Engine, normalizePipeline, openStore, type PipelineSpec } from '../../src/index.js';

/** The attribute step's access to values: writes are fenced by the attempt's lease, on a real SQLite store. */
describe('the fenced attribute port', () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-attr-port-'));
    store = new SqliteStore({ path: join(dir, 's.db') });
    await store.migrate();
    await store.putDataset('items', {}, 1);
    await store.putRecords('items', [{ id: 'a', data: { n: 1 } }], 1);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const value = { recordId: 'a', value: 2, confidence: null, justification: null, inputHash: 'h', pipelineVersion: 1, runId: null, sourceRev: null };
  const lease = (held: () => boolean): AttemptFence => ({
    attemptId: 1,
    fence: 1,
    owner: 'w',
    check: () => {
      if (!held()) throw new SluiceError('CANCELLED', 'the attempt was cancelled or its lease was lost');
    },
  });

  it('writes while the lease is held, and writes nothing once it is lost', async () => {
    let held = true;
    const port = fencedAttributePort(store, lease(() => held));
    expect(await port.saveAttributeValues('items', 'double', 'p', [value], 2)).toEqual(['a']);
    held = false;
    await expect(port.saveAttributeValues('items', 'double', 'p', [{ ...value, value: 99 }], 3)).rejects.toMatchObject({ code: 'CANCELLED' });
    expect((await store.getAttributeValues('items', 'a'))['double']?.value).toBe(2);
    // Reads do not need the lease.
    expect(await port.countRecords('items')).toBe(1);
  });

  it('refuses to run outside an attempt (no lease to fence by)', () => {
    expect(() => fencedAttributePort(store, undefined)).toThrow(expect.objectContaining({ code: 'STEP_FAILED' }));
  });
});

describe('an engine without attribute pipelines', () => {
  it('fails an attribute run saying how to install them, and createEngine has them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-attr-none-'));
    const spec: PipelineSpec = { name: 'band', dataset: 'items', target: 'band', source: { fields: ['n'] }, steps: { b: { uses: 'code', with: { code: 'return $json.n > 1 ? "high" : "low";' } } } };
    const bare = new Engine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), steps: builtinStepTypes(), onError: () => undefined, artifactsDir: join(dir, 'a') });
    try {
      await bare.store.putDataset('items', {}, 1);
      await bare.store.putRecords('items', [{ id: 'a', data: { n: 2 } }], 1);
      await bare.registerPipeline(normalizePipeline(spec, { stepTypes: bare.steps }));
      bare.startWorker({ pollMs: 5 });
      const { run } = await bare.startRun('band', { input: {} });
      const done = await bare.waitForRun(run.id, { pollMs: 10 });
      expect(done.status).toBe('failed');
      expect(done.error?.message).toContain('attributePipelines()');
    } finally {
      await bare.close();
    }
    const full = createEngine({ store: await openStore(`sqlite:${join(dir, 's.db')}`), artifactsDir: join(dir, 'a'), onError: () => undefined });
    try {
      full.startWorker({ pollMs: 5 });
      const { run } = await full.startRun('band', { input: {} });
      expect((await full.waitForRun(run.id, { pollMs: 10 })).status).toBe('succeeded');
      expect((await full.store.getAttributeValues('items', 'a'))['band']?.value).toBe('high');
    } finally {
      await full.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
