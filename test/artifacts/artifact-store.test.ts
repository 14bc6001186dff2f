import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactStore, isArtifactRef } from '../../src/artifacts/artifact-store.js';

describe('artifact store', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const store = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-art-'));
    dirs.push(dir);
    return new ArtifactStore(dir);
  };

  it('addresses content by sha256 and returns it byte for byte', async () => {
    const s = store();
    const ref = await s.put(Buffer.from([0, 1, 2, 255]), 'image/png');
    expect(ref).toEqual({ $artifact: expect.stringMatching(/^[0-9a-f]{64}$/), size: 4, content_type: 'image/png' });
    expect(isArtifactRef(ref)).toBe(true);
    expect([...(await s.get(ref))]).toEqual([0, 1, 2, 255]);
    expect(await s.getJson(await s.putJson({ a: [1, 2] }))).toEqual({ a: [1, 2] });
  });

  it('stores the same content once', async () => {
    const s = store();
    const a = await s.put('same');
    const b = await s.put('same');
    expect(a).toEqual(b);
    expect(readdirSync(join(s.dir, a.$artifact.slice(0, 2)))).toEqual([a.$artifact]);
  });

  it('names a missing artifact and rejects ids that are not sha256', async () => {
    const s = store();
    await expect(s.get('0'.repeat(64))).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringContaining('0'.repeat(64)) });
    await expect(s.get('../../etc/passwd')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
