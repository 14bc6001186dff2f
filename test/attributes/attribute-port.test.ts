import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fencedAttributePort } from '../../src/attributes/attribute-port.js';
import { SluiceError } from '../../src/core/errors.js';
import type { AttemptFence } from '../../src/steps/step-type.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

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
