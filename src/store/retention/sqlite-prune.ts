import type Database from 'better-sqlite3';
import { SqliteFeatureRunner } from '../sqlite/sqlite-features.js';
import { pruneRuns, type PruneRequest, type PruneResult } from './prune.js';

/**
 * Prunes finished runs of a SQLite store (prune.ts), then gives the freed pages back to the file system: the first
 * prune of a file created without incremental auto-vacuum switches it on, which takes one full VACUUM (a rewrite of
 * the file); later prunes run `PRAGMA incremental_vacuum`.
 */
export class SqlitePruner {
  constructor(
    private readonly db: Database.Database,
    /** The store's BEGIN IMMEDIATE transaction wrapper. */
    private readonly write: <T>(fn: () => T) => T,
  ) {}

  async prune(request: PruneRequest): Promise<PruneResult> {
    const result = await pruneRuns(new SqliteFeatureRunner(this.db, this.write), request);
    if (!request.dryRun && result.runs > 0) result.reclaimedBytes = this.reclaimSpace();
    return result;
  }

  /** Gives free pages back to the file system; returns the bytes given back. */
  private reclaimSpace(): number {
    const size = () => (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
    const before = size();
    if ((this.db.pragma('auto_vacuum', { simple: true }) as number) !== 2) {
      // auto_vacuum changes on an existing file only with a VACUUM, which rewrites it once.
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.exec('VACUUM');
    } else {
      this.db.pragma('incremental_vacuum');
    }
    return Math.max(0, before - size());
  }
}
