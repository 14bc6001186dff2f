import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { SluiceError } from '../core/errors.js';
import type { ArtifactContent, ArtifactRef, ArtifactStore } from './artifact-store.js';

/** Default size of the pieces a streaming store writes and reads: 1 MiB. */
export const CHUNK_BYTES = 1024 * 1024;

const ADDRESS = /^[0-9a-f]{64}$/;

/** The sha256 address of `ref`; anything but 64 lowercase hex digits is refused (it could name a path). */
export function addressOf(ref: ArtifactRef | string): string {
  const hash = typeof ref === 'string' ? ref : ref.$artifact;
  if (typeof hash !== 'string' || !ADDRESS.test(hash)) throw new SluiceError('VALIDATION_FAILED', `not an artifact id: ${String(hash)}`);
  return hash;
}

export function missingArtifact(hash: string, location: string, cause?: unknown): SluiceError {
  return new SluiceError('STORE_ERROR', `artifact ${hash} is missing from ${location}`, { cause, retryable: false, details: { reason: 'missing', artifact: hash } });
}

export function corruptArtifact(hash: string, location: string, problem: string): SluiceError {
  return new SluiceError('STORE_ERROR', `artifact ${hash} in ${location} is corrupt: ${problem}`, { retryable: false, details: { reason: 'corrupt', artifact: hash } });
}

/** Content that is already in memory, as one buffer; undefined for a stream. */
export function wholeContent(content: ArtifactContent): Buffer | undefined {
  if (typeof content === 'string') return Buffer.from(content);
  if (content instanceof Uint8Array) return Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  return undefined;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Counts and hashes the bytes that pass through it. */
export class ContentDigest {
  private readonly hash = createHash('sha256');
  size = 0;

  add(chunk: Buffer): Buffer {
    this.hash.update(chunk);
    this.size += chunk.length;
    return chunk;
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

/** `content` cut into buffers of `size` bytes (the last one shorter), reading a stream a piece at a time. */
export async function* chunksOf(content: ArtifactContent, size = CHUNK_BYTES): AsyncGenerator<Buffer> {
  const whole = wholeContent(content);
  if (whole) {
    for (let at = 0; at < whole.length; at += size) yield whole.subarray(at, at + size);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  if (!content || typeof (content as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    throw new SluiceError('VALIDATION_FAILED', `artifact content is ${content === null ? 'null' : typeof content}; expected bytes, text or a stream`);
  }
  for await (const piece of content as AsyncIterable<Uint8Array | string>) {
    let buf = wholeContent(piece);
    if (!buf) throw new SluiceError('VALIDATION_FAILED', `artifact content: a stream yielded ${typeof piece}, expected bytes or text`);
    while (pendingBytes + buf.length >= size) {
      const take = size - pendingBytes;
      pending.push(buf.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      buf = buf.subarray(take);
    }
    if (buf.length > 0) {
      pending.push(buf);
      pendingBytes += buf.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/**
 * A stream of `chunks` that checks, at the end, that they hash to `hash` (and add up to `size` when known):
 * a reader gets an error instead of the end of the stream when stored bytes were changed or lost.
 */
export function verifiedStream(chunks: AsyncIterable<Buffer>, hash: string, location: string, size?: number): Readable {
  async function* verify(): AsyncGenerator<Buffer> {
    const digest = new ContentDigest();
    for await (const chunk of chunks) yield digest.add(chunk);
    if (size !== undefined && digest.size !== size) throw corruptArtifact(hash, location, `${digest.size} bytes read, ${size} stored`);
    const actual = digest.hex();
    if (actual !== hash) throw corruptArtifact(hash, location, `its bytes hash to ${actual}`);
  }
  return Readable.from(verify(), { objectMode: false });
}

/** What every store shares: JSON on top of bytes, and `get` as a verified stream read to the end. */
export abstract class BaseArtifactStore implements ArtifactStore {
  abstract readonly location: string;
  abstract put(content: ArtifactContent, contentType?: string): Promise<ArtifactRef>;
  abstract stream(ref: ArtifactRef | string): Promise<Readable>;
  abstract has(ref: ArtifactRef | string): Promise<boolean>;

  putJson(value: unknown): Promise<ArtifactRef> {
    return this.put(JSON.stringify(value ?? null), 'application/json');
  }

  async get(ref: ArtifactRef | string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of await this.stream(ref)) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  async getJson(ref: ArtifactRef | string): Promise<unknown> {
    return JSON.parse((await this.get(ref)).toString('utf8'));
  }
}
