import type { CreateRunRequest, CreatedRun } from '../store.js';
import { createRun as ledgerCreateRun, type CreateHooks } from '../ledger/run-create.js';
import type { SqliteCtx } from './sqlite-context.js';
import type Database from 'better-sqlite3';
import { migrations } from './migrations/index.js';
// Run creation of the SQLite store: the ledger's rule, with the run's header cached.

/** Creates a run (the ledger's rule) in the current write transaction. */
export function createRun(c: SqliteCtx, req: CreateRunRequest, now: number): CreatedRun {
  return c.transitions.run(ledgerCreateRun(c.transitions, req, now, createHooks(c)));
}

/** What the SQLite driver adds to run creation: the new run's header is cached. */
export function createHooks(c: SqliteCtx): CreateHooks {
  return { created: (run) => void c.remember(run) };
}

/** Applies pending numbered migrations, recorded in `sluice_migrations`; call in a write transaction. */
export function applyMigrations(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS sluice_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set((db.prepare('SELECT id FROM sluice_migrations').all() as Array<{ id: number }>).map((r) => r.id));
  for (const m of migrations) {
    if (done.has(m.id)) continue;
    db.exec(m.sql);
    db.prepare('INSERT INTO sluice_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, Date.now());
  }
}
