import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { transaction, type RetryPolicy } from '../store/postgres/pg-pool.js';
import type { ArtifactContent, ArtifactRef } from './artifact-store.js';
import { addressOf, BaseArtifactStore, ContentDigest, CHUNK_BYTES, chunksOf, corruptArtifact, missingArtifact, sha256Hex, verifiedStream, wholeContent } from './artifact-content.js';

/** $1 key (sha256 or a temporary upload key), $2 seq, $3 data. */
const INSERT_CHUNK = 'INSERT INTO artifact_chunks (sha256, seq, data) VALUES ($1, $2, $3)';
/** $1 sha256, $2 size, $3 chunks, $4 created_at. Returns a row only when the artifact was not stored yet. */
const INSERT_ARTIFACT = 'INSERT INTO artifacts (sha256, size, chunks, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING RETURNING sha256';
/** $1 upload key, $2 sha256. */
const NAME_CHUNKS = 'UPDATE artifact_chunks SET sha256 = $2 WHERE sha256 = $1';
/** $1 sha256. */
const SELECT_ARTIFACT = 'SELECT size, chunks FROM artifacts WHERE sha256 = $1';
/** $1 sha256, $2 seq. */
const SELECT_CHUNK = 'SELECT data FROM artifact_chunks WHERE sha256 = $1 AND seq = $2';
/** $1 sha256. */
const DELETE_ARTIFACT = 'DELETE FROM artifacts WHERE sha256 = $1 RETURNING sha256';
/** $1 sha256. */
const DELETE_CHUNKS = 'DELETE FROM artifact_chunks WHERE sha256 = $1';

export interface PostgresArtifactStoreOptions {
  /** The store's connection pool; the artifact store never closes it. */
  pool: pg.Pool;
  /** How transient errors (a lost connection, a server restart) are retried. */
  retry: RetryPolicy;
  /** Shown in errors: the store's URL without its password. */
  location: string;
  /** Bytes per `artifact_chunks` row. Default: 1 MiB. */
  chunkBytes?: number;
  /** Epoch ms for `created_at`. Default: `Date.now`. */
  now?: () => number;
}

/** Thrown inside the write transaction when the artifact is already stored: it rolls the new chunks back. */
class AlreadyStored extends Error {
  constructor(readonly stored: { hash: string; size: number }) {
    super('already stored');
  }
}

/**
 * Artifacts in PostgreSQL tables (migration 11): the default of the PostgreSQL store, so workers on any host
 * read what any other wrote. Content is cut into chunks of `chunkBytes` written one row at a time inside one
 * transaction, under a temporary key until the sha256 is known; then the `artifacts` row is inserted and the
 * chunks renamed, or, when those bytes are already stored, the transaction is rolled back (stored once).
 * Reads fetch one chunk per statement and verify the sha256 at the end, so neither end holds more than a chunk.
 */
export class PostgresArtifactStore extends BaseArtifactStore {
  readonly location: string;
  private readonly chunkBytes: number;

  constructor(private readonly options: PostgresArtifactStoreOptions) {
    super();
    this.location = options.location;
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  }

  async put(content: ArtifactContent, contentType = 'application/octet-stream'): Promise<ArtifactRef> {
    const whole = wholeContent(content);
    if (whole) {
      const hash = sha256Hex(whole);
      // Bytes in memory are hashed first: when they are stored already nothing is sent.
      if (!(await this.has(hash))) await this.write(whole, true);
      return { $artifact: hash, size: whole.length, content_type: contentType };
    }
    const { hash, size } = await this.write(content, false);
    return { $artifact: hash, size, content_type: contentType };
  }

  async stream(ref: ArtifactRef | string): Promise<Readable> {
    const hash = addressOf(ref);
    const row = (await this.read<{ size: number; chunks: number }>(SELECT_ARTIFACT, [hash]))[0];
    if (!row) throw missingArtifact(hash, this.location);
    return verifiedStream(this.chunks(hash, row.chunks), hash, this.location, row.size);
  }

  async has(ref: ArtifactRef | string): Promise<boolean> {
    return (await this.read(SELECT_ARTIFACT, [addressOf(ref)])).length > 0;
  }

  async delete(ref: ArtifactRef | string): Promise<boolean> {
    const hash = addressOf(ref);
    return transaction(this.options.pool, this.options.retry, async (c) => {
      const gone = (await c.query(DELETE_ARTIFACT, [hash])).rowCount ?? 0;
      await c.query(DELETE_CHUNKS, [hash]);
      return gone > 0;
    });
  }

  /**
   * Writes the chunks and the artifact row in one transaction. Content in memory may be written again after a
   * lost connection; a stream is read once, so its write is not retried.
   */
  private async write(content: ArtifactContent, replayable: boolean): Promise<{ hash: string; size: number }> {
    const policy = replayable ? this.options.retry : { ...this.options.retry, retryForMs: 0 };
    try {
      return await transaction(this.options.pool, policy, (c) => this.writeIn(c, content), { retryUnknownCommit: replayable });
    } catch (err) {
      if (err instanceof AlreadyStored) return err.stored;
      throw err;
    }
  }

  private async writeIn(c: pg.PoolClient, content: ArtifactContent): Promise<{ hash: string; size: number }> {
    const upload = `upload-${randomBytes(12).toString('hex')}`;
    const digest = new ContentDigest();
    let seq = 0;
    for await (const chunk of chunksOf(content, this.chunkBytes)) {
      await c.query({ name: 'artifact_insert_chunk', text: INSERT_CHUNK, values: [upload, seq++, digest.add(chunk)] });
    }
    const result = { hash: digest.hex(), size: digest.size };
    const now = (this.options.now ?? Date.now)();
    const inserted = await c.query(INSERT_ARTIFACT, [result.hash, result.size, seq, now]);
    if (inserted.rowCount === 0) throw new AlreadyStored(result);
    await c.query(NAME_CHUNKS, [upload, result.hash]);
    return result;
  }

  private async *chunks(hash: string, count: number): AsyncGenerator<Buffer> {
    for (let seq = 0; seq < count; seq++) {
      const row = (await this.read<{ data: Buffer }>(SELECT_CHUNK, [hash, seq]))[0];
      if (!row) throw corruptArtifact(hash, this.location, `chunk ${seq} of ${count} is missing`);
      yield row.data;
    }
  }

  private read<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return transaction(this.options.pool, this.options.retry, async (c) => (await c.query<R>(text, values)).rows, { single: true, retryUnknownCommit: true });
  }
}
