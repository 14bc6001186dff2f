import type Database from 'better-sqlite3';
import type pg from 'pg';

/** Statements of cron slot claims, written once for both dialects (`p(n)` is the n-th parameter). */
function cronSql(p: (n: number) => string) {
  return {
    // pipeline, trigger, slot, now: one caller per (pipeline, trigger, slot) inserts the row
    claim: `INSERT INTO cron_slots (pipeline, trigger, slot, claimed_at) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}) ON CONFLICT DO NOTHING`,
    // pipeline, trigger: the latest slot claimed
    last: `SELECT MAX(slot) AS slot FROM cron_slots WHERE pipeline = ${p(1)} AND trigger = ${p(2)}`,
  };
}

const SQLITE = cronSql(() => '?');
const PG = cronSql((n) => `$${n}`);

/** Cron slot claims on SQLite; `write` is the store's BEGIN IMMEDIATE wrapper. */
export class SqliteCronSlots {
  constructor(
    private readonly db: Database.Database,
    private readonly write: <T>(fn: () => T) => T,
  ) {}

  claim(pipeline: string, trigger: string, slot: number, now: number): boolean {
    return this.write(() => this.db.prepare(SQLITE.claim).run(pipeline, trigger, slot, now).changes === 1);
  }

  last(pipeline: string, trigger: string): number | undefined {
    return (this.db.prepare(SQLITE.last).get(pipeline, trigger) as { slot: number | null }).slot ?? undefined;
  }
}

type Run = <R extends pg.QueryResultRow>(sql: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

/** Cron slot claims on PostgreSQL; `run` is the store's retrying statement runner. */
export class PgCronSlots {
  constructor(private readonly run: Run) {}

  async claim(pipeline: string, trigger: string, slot: number, now: number): Promise<boolean> {
    return ((await this.run(PG.claim, [pipeline, trigger, slot, now])).rowCount ?? 0) === 1;
  }

  async last(pipeline: string, trigger: string): Promise<number | undefined> {
    const slot = (await this.run<{ slot: string | null }>(PG.last, [pipeline, trigger])).rows[0]?.slot;
    return slot === null || slot === undefined ? undefined : Number(slot);
  }
}
