import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactStore, isArtifactRef } from '../../src/artifacts/artifact-store.js';
import { FolderArtifactStore } from '../../src/artifacts/folder-artifact-store.js';
import { openArtifactStore } from '../../src/artifacts/open-artifact-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

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

describe('folder artifact store, streamed', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const folder = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-art-'));
    dirs.push(dir);
    return new FolderArtifactStore(dir);
  };

  it('stores a stream under the sha256 of its bytes, once, and streams it back', async () => {
    const s = folder();
    const data = randomBytes(3 * 1024 * 1024 + 11);
    const whole = await s.put(data);
    const streamed = await s.put(Readable.from([data.subarray(0, 12_345), data.subarray(12_345)]));
    expect(streamed).toEqual(whole);
    expect(readdirSync(join(s.dir, whole.$artifact.slice(0, 2)))).toEqual([whole.$artifact]);
    expect(readdirSync(s.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const parts: Buffer[] = [];
    for await (const chunk of await s.stream(whole)) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(await s.has(whole)).toBe(true);
    expect(await s.delete(whole)).toBe(true);
    expect(await s.has(whole)).toBe(false);
  });

  it('refuses a blob whose bytes were changed on disk', async () => {
    const s = folder();
    const ref = await s.put('the original');
    writeFileSync(join(s.dir, ref.$artifact.slice(0, 2), ref.$artifact), 'tampered!!!!');
    await expect(s.get(ref)).rejects.toMatchObject({ code: 'STORE_ERROR', details: { reason: 'corrupt' }, message: expect.stringContaining(ref.$artifact) });
  });
});

describe('choosing the artifact store', () => {
  it('reads a folder path, s3://bucket/prefix or store, and names what is wrong', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    expect(openArtifactStore(undefined, { store, defaultDir: '/tmp/sluice-default' }).location).toBe('/tmp/sluice-default');
    expect(openArtifactStore('/data/art', { store }).location).toBe('/data/art');
    expect(openArtifactStore('s3://bucket/some/prefix', { store, env: { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' } }).location).toBe('s3://bucket/some/prefix');
    expect(() => openArtifactStore('store', { store })).toThrow(/artifacts "store": the store sqlite:.* keeps no artifacts in its database; use a folder path or s3:\/\/bucket\/prefix/);
    expect(() => openArtifactStore('gs://bucket', { store })).toThrow(/artifacts gs:\/\/bucket: unknown kind/);
    expect(() => openArtifactStore('s3://bucket', { store, env: {} })).toThrow(/needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    await store.close();
  });
});

describe('artifact content', () => {
  it('refuses content that is neither bytes, text nor a stream of them, and stores nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-art-'));
    try {
      const s = new FolderArtifactStore(dir);
      await expect(s.put(42 as never)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: 'artifact content is number; expected bytes, text or a stream' });
      await expect(s.put(Readable.from([{ not: 'bytes' }]))).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('a stream yielded object') });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
