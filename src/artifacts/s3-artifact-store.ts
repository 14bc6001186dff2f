import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { SluiceError, errorMessage } from '../core/errors.js';
import type { ArtifactContent, ArtifactRef } from './artifact-store.js';
import { addressOf, BaseArtifactStore, ContentDigest, chunksOf, missingArtifact, sha256Hex, verifiedStream, wholeContent } from './artifact-content.js';
import { EMPTY_SHA256, encodeRfc3986, signRequest, type AwsCredentials } from './sigv4.js';

export interface S3ArtifactStoreOptions {
  bucket: string;
  /** Key prefix: an artifact is the object `<prefix>/<sha256>`. Default: none. */
  prefix?: string;
  /** Default: `us-east-1`. */
  region?: string;
  /**
   * Base URL of an S3-compatible server (MinIO, Ceph, R2, a local test server), addressed path-style
   * (`<endpoint>/<bucket>/<key>`). Default: AWS, virtual-hosted (`https://<bucket>.s3.<region>.amazonaws.com`).
   */
  endpoint?: string;
  credentials: AwsCredentials;
  /** Folder where a streamed artifact is spooled while its sha256 is computed. Default: the OS temp folder. */
  spoolDir?: string;
}

/**
 * Artifacts in an S3-compatible bucket, signed with AWS Signature V4 over Node's fetch (no SDK). An artifact is
 * one object named by its sha256; a put first asks (HEAD) whether it is there, and sends the sha256 as
 * `x-amz-content-sha256`, so the server checks the bytes it got. A streamed artifact is spooled to a temp file
 * while it is hashed (its name is its hash), then uploaded from it: one PUT, up to 5 GB.
 */
export class S3ArtifactStore extends BaseArtifactStore {
  readonly location: string;
  private readonly region: string;
  private readonly base: URL;
  private readonly pathStyle: boolean;

  constructor(private readonly options: S3ArtifactStoreOptions) {
    super();
    if (!options.bucket) throw new SluiceError('VALIDATION_FAILED', 'the S3 artifact store needs a bucket');
    this.region = options.region ?? 'us-east-1';
    this.pathStyle = options.endpoint !== undefined;
    this.base = new URL(options.endpoint ?? `https://${options.bucket}.s3.${this.region}.amazonaws.com`);
    const prefix = this.prefix();
    this.location = `s3://${options.bucket}${prefix ? `/${prefix}` : ''}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
  }

  /**
   * `s3://bucket/prefix` with settings from the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
   * `AWS_SESSION_TOKEN` (optional), `AWS_REGION` (default `us-east-1`) and `SLUICE_S3_ENDPOINT` (an
   * S3-compatible server; default AWS).
   */
  static fromUrl(url: string, env: NodeJS.ProcessEnv = process.env): S3ArtifactStore {
    const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
    if (!match) throw new SluiceError('VALIDATION_FAILED', `artifact store ${url} is not s3://bucket[/prefix]`);
    const accessKeyId = env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
    if (!accessKeyId || !secretAccessKey) {
      throw new SluiceError('VALIDATION_FAILED', `artifact store ${url} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment`);
    }
    const options: S3ArtifactStoreOptions = { bucket: match[1]!, prefix: match[2] ?? '', credentials: { accessKeyId, secretAccessKey, sessionToken: env['AWS_SESSION_TOKEN'] } };
    const region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
    if (region) options.region = region;
    if (env['SLUICE_S3_ENDPOINT']) options.endpoint = env['SLUICE_S3_ENDPOINT'];
    return new S3ArtifactStore(options);
  }

  async put(content: ArtifactContent, contentType = 'application/octet-stream'): Promise<ArtifactRef> {
    const whole = wholeContent(content);
    if (whole) {
      const hash = sha256Hex(whole);
      if (!(await this.has(hash))) await this.upload(hash, whole, whole.length, contentType);
      return { $artifact: hash, size: whole.length, content_type: contentType };
    }
    return this.putStream(content, contentType);
  }

  async stream(ref: ArtifactRef | string): Promise<Readable> {
    const hash = addressOf(ref);
    const res = await this.send('GET', hash);
    if (res.status === 404) throw missingArtifact(hash, this.location);
    if (!res.ok || !res.body) throw await this.failure(res, `reading artifact ${hash}`);
    const length = Number(res.headers.get('content-length') ?? Number.NaN);
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    const chunks = (async function* () {
      for await (const chunk of body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    })();
    return verifiedStream(chunks, hash, this.location, Number.isFinite(length) ? length : undefined);
  }

  async has(ref: ArtifactRef | string): Promise<boolean> {
    const hash = addressOf(ref);
    const res = await this.send('HEAD', hash);
    if (res.status === 404) return false;
    if (!res.ok) throw await this.failure(res, `looking up artifact ${hash}`);
    return true;
  }

  async delete(ref: ArtifactRef | string): Promise<boolean> {
    const hash = addressOf(ref);
    // S3 answers a DELETE of a missing object with 204 too; ask first so the answer means something.
    if (!(await this.has(hash))) return false;
    const res = await this.send('DELETE', hash);
    if (!res.ok) throw await this.failure(res, `deleting artifact ${hash}`);
    return true;
  }

  private async putStream(content: ArtifactContent, contentType: string): Promise<ArtifactRef> {
    const spool = join(this.options.spoolDir ?? tmpdir(), `sluice-s3-${randomBytes(6).toString('hex')}.tmp`);
    const digest = new ContentDigest();
    try {
      await pipeline(
        (async function* () {
          for await (const chunk of chunksOf(content)) yield digest.add(chunk);
        })(),
        createWriteStream(spool),
      );
      const hash = digest.hex();
      if (!(await this.has(hash))) await this.upload(hash, Readable.toWeb(createReadStream(spool)) as ReadableStream<Uint8Array>, digest.size, contentType);
      return { $artifact: hash, size: digest.size, content_type: contentType };
    } finally {
      await rm(spool, { force: true });
    }
  }

  private async upload(hash: string, body: Buffer | ReadableStream<Uint8Array>, size: number, contentType: string): Promise<void> {
    const res = await this.send('PUT', hash, { body, payloadHash: hash, headers: { 'content-type': contentType, 'content-length': String(size) } });
    if (!res.ok) throw await this.failure(res, `writing artifact ${hash}`);
    await res.body?.cancel();
  }

  private async send(method: string, hash: string, extra: { body?: Buffer | ReadableStream<Uint8Array>; payloadHash?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const url = this.urlOf(hash);
    const headers = signRequest({ method, url, headers: extra.headers ?? {}, payloadHash: extra.payloadHash ?? EMPTY_SHA256, region: this.region, credentials: this.options.credentials });
    const init: RequestInit & { duplex?: 'half' } = { method, headers };
    if (extra.body !== undefined) {
      init.body = extra.body;
      if (!Buffer.isBuffer(extra.body)) init.duplex = 'half';
    }
    try {
      return await fetch(url, init);
    } catch (err) {
      throw new SluiceError('STORE_ERROR', `${method} ${this.location}: ${errorMessage(err)}`, { cause: err, retryable: true });
    }
  }

  private urlOf(hash: string): URL {
    const key = [...this.prefix().split('/').filter(Boolean), hash];
    const segments = this.pathStyle ? [this.options.bucket, ...key] : key;
    const basePath = this.base.pathname.replace(/\/+$/, '');
    const url = new URL(this.base.toString());
    url.pathname = `${basePath}/${segments.map(encodeRfc3986).join('/')}`;
    return url;
  }

  private prefix(): string {
    return (this.options.prefix ?? '').replace(/^\/+|\/+$/g, '');
  }

  /** An error naming what failed, the HTTP status and S3's error code (`NoSuchBucket`, `SignatureDoesNotMatch`...). */
  private async failure(res: Response, what: string): Promise<SluiceError> {
    const text = res.body ? await res.text().catch(() => '') : '';
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
    const retryable = res.status >= 500 || res.status === 429;
    return new SluiceError('STORE_ERROR', `${what} in ${this.location} failed: HTTP ${res.status}${code ? ` ${code}` : ''}`, { retryable, details: { status: res.status, s3Code: code } });
  }
}
