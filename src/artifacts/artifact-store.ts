import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../core/errors.js';

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
 * Content-addressed blobs in a folder (`.sluice/artifacts` by default): each blob lives at
 * `<dir>/<first 2 hex>/<sha256>`, written to a temp file and renamed, so a reader never sees half a blob
 * and writing the same content twice is a no-op.
 */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  async put(content: Buffer | string, contentType = 'application/octet-stream'): Promise<ArtifactRef> {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const hash = createHash('sha256').update(data).digest('hex');
    const path = this.pathOf(hash);
    const exists = await stat(path).then(
      (s) => s.size === data.length,
      () => false,
    );
    if (!exists) {
      await mkdir(join(this.dir, hash.slice(0, 2)), { recursive: true });
      const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, data);
      await rename(tmp, path);
    }
    return { $artifact: hash, size: data.length, content_type: contentType };
  }

  /** Stores a JSON value as an artifact. */
  putJson(value: unknown): Promise<ArtifactRef> {
    return this.put(JSON.stringify(value), 'application/json');
  }

  async get(ref: ArtifactRef | string): Promise<Buffer> {
    const hash = typeof ref === 'string' ? ref : ref.$artifact;
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new SluiceError('VALIDATION_FAILED', `not an artifact id: ${hash}`);
    try {
      return await readFile(this.pathOf(hash));
    } catch (err) {
      throw new SluiceError('STORE_ERROR', `artifact ${hash} is missing from ${this.dir}`, { cause: err, retryable: false });
    }
  }

  async getJson(ref: ArtifactRef | string): Promise<unknown> {
    return JSON.parse((await this.get(ref)).toString('utf8'));
  }

  private pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }
}
