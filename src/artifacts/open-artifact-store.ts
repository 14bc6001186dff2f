import { resolve } from 'node:path';
import { SluiceError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { ArtifactStore } from './artifact-store.js';
import { FolderArtifactStore } from './folder-artifact-store.js';
import { S3ArtifactStore } from './s3-artifact-store.js';
import { storeArtifacts } from './store-artifacts.js';

/**
 * Where artifacts live, as `SLUICE_ARTIFACTS` and the engine's `artifacts` option say it:
 * - `store`: in the store itself (PostgreSQL: its `artifacts` tables); refused by a store without them (SQLite).
 * - `s3://bucket/prefix`: an S3-compatible bucket ({@link S3ArtifactStore.fromUrl} reads the credentials,
 *   region and endpoint from `env`).
 * - anything else: a folder path, relative to the working directory.
 * - nothing: the store's own when it has them (PostgreSQL), else `defaultDir`.
 */
export function openArtifactStore(setting: string | undefined, where: { store: Store; defaultDir?: string; env?: NodeJS.ProcessEnv }): ArtifactStore {
  const value = setting?.trim();
  if (!value) return storeArtifacts(where.store) ?? new FolderArtifactStore(where.defaultDir ?? resolve('.sluice', 'artifacts'));
  if (value === 'store') {
    const own = storeArtifacts(where.store);
    if (!own) {
      throw new SluiceError('VALIDATION_FAILED', `artifacts "store": the store ${where.store.url} keeps no artifacts in its database; use a folder path or s3://bucket/prefix`);
    }
    return own;
  }
  if (value.startsWith('s3://')) return S3ArtifactStore.fromUrl(value, where.env ?? process.env);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new SluiceError('VALIDATION_FAILED', `artifacts ${value}: unknown kind; expected a folder path, s3://bucket/prefix or store`);
  }
  return new FolderArtifactStore(resolve(value));
}
