import { Readable } from 'node:stream';
import type { ArtifactContent, ArtifactRef, ArtifactStore } from './artifact-store.js';
import { addressOf, BaseArtifactStore, chunksOf, missingArtifact, sha256Hex, wholeContent } from './artifact-content.js';

/**
 * Artifacts held in memory, for executions that persist nothing (simulate): what is put stays here; reads of
 * anything else fall back to `source` (the engine's store), when given.
 */
export class MemoryArtifactStore extends BaseArtifactStore {
  readonly location = 'memory';
  private readonly blobs = new Map<string, Buffer>();

  constructor(private readonly source?: Pick<ArtifactStore, 'get'>) {
    super();
  }

  async put(content: ArtifactContent, contentType = 'application/octet-stream'): Promise<ArtifactRef> {
    let data = wholeContent(content);
    if (!data) {
      const parts: Buffer[] = [];
      for await (const chunk of chunksOf(content)) parts.push(chunk);
      data = Buffer.concat(parts);
    }
    const hash = sha256Hex(data);
    this.blobs.set(hash, data);
    return { $artifact: hash, size: data.length, content_type: contentType };
  }

  override async get(ref: ArtifactRef | string): Promise<Buffer> {
    const hash = addressOf(ref);
    const blob = this.blobs.get(hash);
    if (blob) return blob;
    if (this.source) return this.source.get(ref);
    throw missingArtifact(hash, 'memory (artifacts written outside this simulation are not available)');
  }

  async stream(ref: ArtifactRef | string): Promise<Readable> {
    return Readable.from([await this.get(ref)]);
  }

  async has(ref: ArtifactRef | string): Promise<boolean> {
    return this.blobs.has(addressOf(ref)) || (await this.get(ref).then(() => true, () => false));
  }
}
