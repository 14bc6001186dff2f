/**
 * A migrated SQLite store file, made once per test run by the global setup (./global-setup.ts): tests copy it
 * instead of migrating a new file per store.
 */
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    sluiceSqliteTemplate: string;
  }
}

/** Path of the run's migrated SQLite file (copy it; never open it). */
export function sqliteTemplate(): string {
  return inject('sluiceSqliteTemplate');
}
