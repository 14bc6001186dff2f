import { sql as init } from './001-init.js';
import { sql as server } from './002-server.js';

/** Numbered, append-only migrations of the PostgreSQL backend. */
export const migrations: ReadonlyArray<{ id: number; name: string; sql: string }> = [
  { id: 1, name: 'init', sql: init },
  { id: 2, name: 'server', sql: server },
];
