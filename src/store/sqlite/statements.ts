import type Database from 'better-sqlite3';

/** A table of named SQL statements, each prepared on first use and kept for the connection's life. */
export class Statements<K extends string> {
  private readonly prepared = new Map<K, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly sql: Readonly<Record<K, string>>,
  ) {}

  get(key: K): Database.Statement {
    let s = this.prepared.get(key);
    if (!s) {
      s = this.db.prepare(this.sql[key]);
      this.prepared.set(key, s);
    }
    return s;
  }
}
