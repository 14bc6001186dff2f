import type { Readable } from 'node:stream';
import { FolderArtifactStore } from './folder-artifact-store.js';

/** A reference to a content-addressed blob: what run state holds instead of the blob itself. */
export interface ArtifactRef {
  /** sha256 of the content, hex. */
  $artifact: string;
  size: number;
  content_type: string;
}

/** Default: outputs larger than 256 KiB are stored as artifacts. */
export const DEFAULT_INLINE_LIMIT = 256 * 1024;

export function isArtifactRef(value: unknown): value is ArtifactRef {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { $artifact?: unknown }).$artifact === 'string' &&
    /^[0-9a-f]{64}$/.test((value as { $artifact: string }).$artifact)
  );
}

/**
 * What an artifact is written from: bytes, text (UTF-8), or a stream of chunks (a `Readable`, or any async
 * iterable of bytes), which is read a chunk at a time and never held whole in memory by stores that stream.
 */
export type ArtifactContent = Buffer | Uint8Array | string | AsyncIterable<Uint8Array | string>;

/**
 * Where artifacts live: content-addressed blobs, each named by the sha256 of its bytes. Putting the same bytes
 * twice stores them once. Implementations: {@link FolderArtifactStore} (a local folder, the default on SQLite),
 * `PostgresArtifactStore` (tables of the PostgreSQL store, its default) and `S3ArtifactStore` (an S3-compatible
 * bucket). The engine and `ctx.artifacts` use only this interface; pass your own as `artifacts` to
 * `createEngine`.
 *
 * Errors: an address that is not 64 hex digits is `VALIDATION_FAILED`; a missing artifact is `STORE_ERROR`
 * with `details.reason` `missing`; bytes whose sha256 no longer matches their address are `STORE_ERROR` with
 * `details.reason` `corrupt`. Both name the address and the store's location.
 */
export interface ArtifactStore {
  /** Where the artifacts are, for messages (a folder, `postgres://host/db`, `s3://bucket/prefix`). */
  readonly location: string;
  /**
   * Stores `content` and returns its reference (sha256, size, content type). A stream is consumed as it is
   * read. Default content type: `application/octet-stream`.
   */
  put(content: ArtifactContent, contentType?: string): Promise<ArtifactRef>;
  /** Stores the JSON text of `value` (content type `application/json`). */
  putJson(value: unknown): Promise<ArtifactRef>;
  /** The whole content, verified against its sha256. */
  get(ref: ArtifactRef | string): Promise<Buffer>;
  /** The content parsed as JSON. */
  getJson(ref: ArtifactRef | string): Promise<unknown>;
  /**
   * The content as a stream of chunks. A missing artifact rejects before the first chunk; a stream whose
   * bytes do not hash to the address ends with the `corrupt` error instead of its last chunk.
   */
  stream(ref: ArtifactRef | string): Promise<Readable>;
  /** Whether the artifact is stored. */
  has(ref: ArtifactRef | string): Promise<boolean>;
  /**
   * Removes the artifact; resolves to whether it was there. Optional: for retention, which must first make
   * sure no run state still refers to it.
   */
  delete?(ref: ArtifactRef | string): Promise<boolean>;
}

/**
 * The folder store under its former name, so that `new ArtifactStore(dir)` keeps working.
 * @deprecated Use {@link FolderArtifactStore}.
 */
export const ArtifactStore = FolderArtifactStore;
