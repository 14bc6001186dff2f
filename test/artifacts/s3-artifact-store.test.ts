/**
 * Artifacts in an S3-compatible bucket: the SigV4 signer against AWS's published example, and the store against
 * a real local S3 server (s3rver, a devDependency, on 127.0.0.1). Skipped, saying so, when s3rver is not
 * installed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../../src/artifacts/open-artifact-store.js';
import { S3ArtifactStore } from '../../src/artifacts/s3-artifact-store.js';
import { EMPTY_SHA256, signRequest } from '../../src/artifacts/sigv4.js';
import { Engine } from '../../src/engine/engine.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { testSteps } from '../support/test-steps.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverServer;

/** s3rver is CommonJS; loaded with require so that a missing install skips instead of failing to import. */
function loadS3rver(): S3rverClass | undefined {
  try {
    return createRequire(import.meta.url)('s3rver') as S3rverClass;
  } catch {
    return undefined;
  }
}

describe('AWS Signature V4', () => {
  it('signs the GET Object example of the S3 documentation to its published signature', () => {
    const headers = signRequest({
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { Range: 'bytes=0-9' },
      payloadHash: EMPTY_SHA256,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      now: new Date('2013-05-24T00:00:00Z'),
    });
    expect(headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
  });
});

const S3rver = loadS3rver();
if (!S3rver) console.warn('s3-artifact-store: s3rver is not installed (npm install), so the S3 artifact store tests against a local S3 server are skipped');

describe.skipIf(!S3rver)('S3 artifact store on a local S3 server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-s3-'));
  const data = join(dir, 'data');
  let server: S3rverServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = new S3rver!({ address: '127.0.0.1', port: 0, silent: true, directory: data, configureBuckets: [{ name: 'artifacts' }] });
    const { port } = await server.run();
    env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', SLUICE_S3_ENDPOINT: `http://127.0.0.1:${port}` };
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Objects the server holds under `prefix`, by name. */
  const objects = (prefix: string) => {
    try {
      return readdirSync(join(data, 'artifacts', prefix)).filter((f) => f.endsWith('._S3rver_object')).map((f) => f.replace('._S3rver_object', ''));
    } catch {
      return [];
    }
  };

  it('puts, finds, streams and deletes artifacts, storing the same bytes once', async () => {
    const s3 = openArtifactStore('s3://artifacts/runs/a', { store: new SqliteStore({ path: ':memory:' }), env });
    expect(s3).toBeInstanceOf(S3ArtifactStore);
    expect(s3.location).toBe(`s3://artifacts/runs/a at ${env['SLUICE_S3_ENDPOINT']}`);
    const blob = randomBytes(2 * 1024 * 1024 + 77);
    const ref = await s3.put(blob, 'image/png');
    const again = await s3.put(Readable.from([blob.subarray(0, 1000), blob.subarray(1000)]), 'image/png');
    expect(again).toEqual(ref);
    expect(objects('runs/a')).toEqual([ref.$artifact]);
    expect(await s3.has(ref)).toBe(true);
    expect((await s3.get(ref)).equals(blob)).toBe(true);
    const parts: Buffer[] = [];
    for await (const chunk of await s3.stream(ref.$artifact)) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(blob)).toBe(true);
    expect(await s3.getJson(await s3.putJson({ a: [1, 2] }))).toEqual({ a: [1, 2] });
    // A stream of new bytes is spooled, hashed and uploaded in one PUT.
    const other = randomBytes(1024 * 1024 + 5);
    const streamed = await s3.put(Readable.from([other.subarray(0, 300_000), other.subarray(300_000)]));
    expect(streamed).toMatchObject({ size: other.length });
    expect((await s3.get(streamed)).equals(other)).toBe(true);
    expect(await s3.delete!(ref)).toBe(true);
    expect(await s3.delete!(ref)).toBe(false);
    expect(await s3.has(ref)).toBe(false);
  });

  it('names a missing artifact, refuses changed bytes, and says what S3 refused', async () => {
    const s3 = S3ArtifactStore.fromUrl('s3://artifacts/runs/b', env);
    const missing = 'f'.repeat(64);
    await expect(s3.get(missing)).rejects.toMatchObject({ code: 'STORE_ERROR', details: { reason: 'missing' }, message: expect.stringContaining(missing) });
    const ref = await s3.put('original bytes');
    writeFileSync(join(data, 'artifacts', 'runs', 'b', `${ref.$artifact}._S3rver_object`), 'changed bytes!');
    await expect(s3.get(ref)).rejects.toMatchObject({ code: 'STORE_ERROR', details: { reason: 'corrupt' } });

    // s3rver checks the key id of a V4 request, not its signature: the signer is checked by the AWS example above.
    const stranger = S3ArtifactStore.fromUrl('s3://artifacts/runs/b', { ...env, AWS_ACCESS_KEY_ID: 'NOBODY' });
    await expect(stranger.get(ref)).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringMatching(/reading artifact \w+ in s3:\/\/artifacts\/runs\/b .*HTTP 403 InvalidAccessKeyId/) });
    await expect(stranger.put('anything')).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringContaining('HTTP 403') });
    expect(() => S3ArtifactStore.fromUrl('s3://artifacts', {})).toThrow(/needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  it('is where an engine keeps large step outputs when told so', async () => {
    const store = new SqliteStore({ path: join(dir, 'sluice.db') });
    await store.migrate();
    const steps = testSteps({ make: () => ({ text: 'y'.repeat(300 * 1024) }), count: (ctx) => ({ n: (ctx.steps['make'] as { text: string }).text.length }) });
    const engine = new Engine({ store, steps, artifacts: S3ArtifactStore.fromUrl('s3://artifacts/engine', env), onError: () => {} });
    try {
      const spec = { name: 'big', steps: { make: { uses: 'function', with: { fn: 'make' } }, count: { uses: 'function', with: { fn: 'count' }, needs: ['make'] } } };
      const pipeline = await engine.registerPipeline(normalizePipeline(spec, { stepTypes: steps }));
      engine.startWorker({ pollMs: 20 });
      const { run } = await engine.startRun(pipeline);
      expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
      expect((await engine.store.listSteps(run.id)).find((s) => s.name === 'count')?.output).toEqual({ n: 300 * 1024 });
      expect(objects('engine')).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });
});
