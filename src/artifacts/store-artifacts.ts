import type { Readable } from 'node:stream';
import type { PostgresStore } from '../store/postgres/postgres-store.js';
import type { Store } from '../store/store.js';
import { BaseArtifactStore } from './artifact-content.js';
import type { ArtifactContent, ArtifactRef } from './artifact-store.js';
import type { PostgresArtifactStore } from './postgres-artifact-store.js';

/**
 * Artifacts kept in the store's own database, for a store with `capabilities.artifactTables` (PostgreSQL: tables
 * `artifacts` and `artifact_chunks`, see {@link PostgresArtifactStore}), over the store's connection pool. The
 * artifact code is loaded at the first call, so that programs on SQLite never load it (nor `pg`, an optional peer).
 */
export class StoreArtifacts extends BaseArtifactStore {
  readonly location: string;
  private opened: Promise<PostgresArtifactStore> | undefined;

  constructor(private readonly store: Store) {
    super();
    this.location = store.url;
  }

  async put(content: ArtifactContent, contentType?: string): Promise<ArtifactRef> {
    return (await this.open()).put(content, contentType);
  }

  async stream(ref: ArtifactRef | string): Promise<Readable> {
    return (await this.open()).stream(ref);
  }

  async has(ref: ArtifactRef | string): Promise<boolean> {
    return (await this.open()).has(ref);
  }

  async delete(ref: ArtifactRef | string): Promise<boolean> {
    return (await this.open()).delete(ref);
  }

  private open(): Promise<PostgresArtifactStore> {
    this.opened ??= import('./postgres-artifact-store.js').then(({ PostgresArtifactStore }) => {
      // Only the PostgreSQL store declares artifact tables (see storeArtifacts).
      const { pool, retry } = (this.store as PostgresStore).sharedPool();
      return new PostgresArtifactStore({ pool, retry, location: this.location });
    });
    return this.opened;
  }
}

/** The artifacts of the store's own database, when it keeps them (`capabilities.artifactTables`); else undefined. */
export function storeArtifacts(store: Store): StoreArtifacts | undefined {
  return store.capabilities.artifactTables ? new StoreArtifacts(store) : undefined;
}
