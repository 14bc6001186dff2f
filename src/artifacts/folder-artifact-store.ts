import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { ArtifactContent, ArtifactRef } from './artifact-store.js';
import { addressOf, BaseArtifactStore, ContentDigest, chunksOf, missingArtifact, sha256Hex, verifiedStream, wholeContent } from './artifact-content.js';

/**
 * Content-addressed blobs in a local folder (`.sluice/artifacts` by default; the default on SQLite): each blob
 * lives at `<dir>/<first 2 hex>/<sha256>`, written to a temp file and renamed, so a reader never sees half a blob
 * and writing the same content twice is a no-op. Processes on other machines do not see it: with workers on
 * several hosts use the PostgreSQL store's artifacts or an S3 bucket.
 */
export class FolderArtifactStore extends BaseArtifactStore {
  constructor(readonly dir: string) {
    super();
  }

  get location(): string {
    return this.dir;
  }

  async put(content: ArtifactContent, contentType = 'application/octet-stream'): Promise<ArtifactRef> {
    const whole = wholeContent(content);
    const { hash, size } = whole ? await this.putWhole(whole) : await this.putStream(content);
    return { $artifact: hash, size, content_type: contentType };
  }

  async stream(ref: ArtifactRef | string): Promise<Readable> {
    const hash = addressOf(ref);
    const handle = await open(this.pathOf(hash), 'r').catch((err: unknown) => {
      throw missingArtifact(hash, this.dir, err);
    });
    return verifiedStream(handle.createReadStream({ highWaterMark: 256 * 1024 }), hash, this.dir);
  }

  async has(ref: ArtifactRef | string): Promise<boolean> {
    return stat(this.pathOf(addressOf(ref))).then(
      () => true,
      () => false,
    );
  }

  async delete(ref: ArtifactRef | string): Promise<boolean> {
    return unlink(this.pathOf(addressOf(ref))).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
  }

  private async putWhole(data: Buffer): Promise<{ hash: string; size: number }> {
    const hash = sha256Hex(data);
    if (!(await this.holds(hash, data.length))) {
      const tmp = await this.tempPath();
      await writeFile(tmp, data);
      await this.settle(tmp, hash);
    }
    return { hash, size: data.length };
  }

  /** Streams to a temp file while hashing, then moves it to its address (or drops it when that is taken). */
  private async putStream(content: ArtifactContent): Promise<{ hash: string; size: number }> {
    const tmp = await this.tempPath();
    const digest = new ContentDigest();
    const out = createWriteStream(tmp);
    try {
      await pipeline(
        (async function* () {
          for await (const chunk of chunksOf(content)) yield digest.add(chunk);
        })(),
        out,
      );
    } catch (err) {
      // The file stream opens asynchronously: when the content fails before that, the file appears only after
      // pipeline() has rejected. Removed once the destroyed stream has closed, so no temp file is left behind.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    const hash = digest.hex();
    if (await this.holds(hash, digest.size)) await rm(tmp, { force: true });
    else await this.settle(tmp, hash);
    return { hash, size: digest.size };
  }

  private holds(hash: string, size: number): Promise<boolean> {
    return stat(this.pathOf(hash)).then(
      (s) => s.size === size,
      () => false,
    );
  }

  private async settle(tmp: string, hash: string): Promise<void> {
    await mkdir(join(this.dir, hash.slice(0, 2)), { recursive: true });
    await rename(tmp, this.pathOf(hash));
  }

  // Temp files sit at the top of the folder, beside the 2-hex subfolders, so a subfolder lists only blobs.
  private async tempPath(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return join(this.dir, `.put-${randomBytes(6).toString('hex')}.tmp`);
  }

  private pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }
}
