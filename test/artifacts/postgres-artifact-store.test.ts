/**
 * Artifacts in PostgreSQL (migration 11): stored once per sha256, written and read in 1 MiB chunks, verified on
 * read, and a missing or malformed address is a clear error. Real PostgreSQL (embedded, or
 * SLUICE_TEST_POSTGRES_URL); skipped with SLUICE_TEST_POSTGRES=off.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_BYTES } from '../../src/artifacts/artifact-content.js';
import { PostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { openArtifactStore } from '../../src/artifacts/open-artifact-store.js';
import { StoreArtifacts } from '../../src/artifacts/store-artifacts.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { acquirePostgres, createDatabase, postgresDisabled, releasePostgres } from '../support/postgres.js';

/** `data` as a stream of pieces of `size` bytes, none of them aligned with a chunk. */
function piecesOf(data: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
    })(),
  );
}

describe.skipIf(postgresDisabled())('PostgreSQL artifact store', () => {
  let store: PostgresStore;
  let pool: pg.Pool;
  let drop: () => Promise<void>;
  let artifacts: PostgresArtifactStore;

  beforeAll(async () => {
    const db = await createDatabase(await acquirePostgres());
    drop = db.drop;
    store = new PostgresStore({ url: db.url, poolSize: 4 });
    await store.migrate();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await store?.close();
    await drop?.();
    await releasePostgres();
  });
  beforeEach(async () => {
    await pool.query('TRUNCATE artifacts, artifact_chunks');
    artifacts = new PostgresArtifactStore({ ...store.sharedPool(), location: store.url });
  });

  const rows = async () => {
    const r = await pool.query<{ artifacts: string; chunks: string; biggest: number | null }>(
      'SELECT (SELECT count(*) FROM artifacts) AS artifacts, (SELECT count(*) FROM artifact_chunks) AS chunks, (SELECT max(octet_length(data)) FROM artifact_chunks) AS biggest',
    );
    const row = r.rows[0]!;
    return { artifacts: Number(row.artifacts), chunks: Number(row.chunks), biggest: row.biggest === null ? null : Number(row.biggest) };
  };

  it('is what the engine uses on a PostgreSQL store unless told otherwise', () => {
    expect(openArtifactStore(undefined, { store })).toBeInstanceOf(StoreArtifacts);
    expect(openArtifactStore('store', { store })).toBeInstanceOf(StoreArtifacts);
    expect(openArtifactStore(undefined, { store }).location).toBe(store.url);
    expect(openArtifactStore('/tmp/elsewhere', { store }).location).toBe('/tmp/elsewhere');
  });

  it('stores the same bytes once, whether put whole, streamed, or by several writers at once', async () => {
    const data = randomBytes(CHUNK_BYTES + 5000);
    const a = await artifacts.put(data, 'image/png');
    const b = await artifacts.put(piecesOf(data, 70_001), 'image/png');
    const c = await Promise.all([1, 2, 3].map(() => artifacts.put(piecesOf(data, 300_007))));
    expect(b).toEqual(a);
    expect(c.map((r) => r.$artifact)).toEqual([a.$artifact, a.$artifact, a.$artifact]);
    expect(a).toEqual({ $artifact: expect.stringMatching(/^[0-9a-f]{64}$/), size: data.length, content_type: 'image/png' });
    expect(await rows()).toEqual({ artifacts: 1, chunks: 2, biggest: CHUNK_BYTES });
    expect(await artifacts.has(a)).toBe(true);
  });

  it('writes and reads a multi-chunk blob a chunk at a time, byte for byte', async () => {
    const data = randomBytes(2 * CHUNK_BYTES + 123_457);
    const ref = await artifacts.put(piecesOf(data, 99_991));
    expect(await rows()).toEqual({ artifacts: 1, chunks: 3, biggest: CHUNK_BYTES });
    const seen: number[] = [];
    const parts: Buffer[] = [];
    for await (const chunk of await artifacts.stream(ref)) {
      seen.push((chunk as Buffer).length);
      parts.push(chunk as Buffer);
    }
    expect(seen).toEqual([CHUNK_BYTES, CHUNK_BYTES, 123_457]);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect((await artifacts.get(ref.$artifact)).equals(data)).toBe(true);
    expect(await artifacts.getJson(await artifacts.putJson({ big: 'x'.repeat(1000) }))).toEqual({ big: 'x'.repeat(1000) });
    expect((await artifacts.get(await artifacts.put(''))).length).toBe(0);
  });

  it('refuses bytes that no longer hash to their address, and a lost chunk', async () => {
    const data = randomBytes(2 * CHUNK_BYTES + 10);
    const ref = await artifacts.put(data);
    await pool.query(`UPDATE artifact_chunks SET data = overlay(data placing '\\x00ff'::bytea from 10) WHERE sha256 = $1 AND seq = 1`, [ref.$artifact]);
    await expect(artifacts.get(ref)).rejects.toMatchObject({ code: 'STORE_ERROR', details: { reason: 'corrupt' }, message: expect.stringContaining(`${ref.$artifact} in`) });
    const streamed = (async () => {
      for await (const chunk of await artifacts.stream(ref)) void chunk;
    })();
    await expect(streamed).rejects.toMatchObject({ details: { reason: 'corrupt' } });

    await pool.query('DELETE FROM artifact_chunks WHERE sha256 = $1 AND seq = 2', [ref.$artifact]);
    await expect(artifacts.get(ref)).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringContaining('chunk 2 of 3 is missing') });
  });

  it('names a missing artifact, rejects ids that are not sha256, and deletes', async () => {
    const missing = '0'.repeat(64);
    await expect(artifacts.get(missing)).rejects.toMatchObject({ code: 'STORE_ERROR', details: { reason: 'missing' }, message: expect.stringContaining(missing) });
    await expect(artifacts.stream(missing)).rejects.toMatchObject({ details: { reason: 'missing' } });
    expect(await artifacts.has(missing)).toBe(false);
    await expect(artifacts.get('../../etc/passwd')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const ref = await artifacts.put('short-lived');
    expect(await artifacts.delete(ref)).toBe(true);
    expect(await artifacts.delete(ref)).toBe(false);
    expect(await rows()).toEqual({ artifacts: 0, chunks: 0, biggest: null });
  });

  it('leaves nothing behind when the stream being stored fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(CHUNK_BYTES + 1);
        throw new Error('source broke');
      })(),
    );
    await expect(artifacts.put(failing)).rejects.toThrow('source broke');
    expect(await rows()).toEqual({ artifacts: 0, chunks: 0, biggest: null });
  });
});
