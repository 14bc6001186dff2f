import type Database from 'better-sqlite3';
import type { PipelineStats, SeriesOptions } from '../store.js';
import { foldBatch, refoldPlan, refoldRange, statsQuery, type FoldOptions, type FoldReport, type Row, type Rule } from './rollup.js';
import { statsSql } from './stats-sql.js';

/** Minutes folded again per transaction after a prune (one day). */
export const REFOLD_MINUTES = 1440;

/**
 * Pipeline stats on SQLite from the stats rollup (./rollup.ts): a question reads in one read transaction, each
 * turn of the fold and each day folded again after a prune is one write transaction.
 */
/** Statements of one connection, prepared once: written with $n parameters, prepared with `?`, bound in order. */
const prepared = new WeakMap<Database.Database, Map<string, { stmt: Database.Statement; order: number[] }>>();

function stmt(db: Database.Database, text: string, params: unknown[]): { stmt: Database.Statement; values: unknown[] } {
  let cache = prepared.get(db);
  if (!cache) prepared.set(db, (cache = new Map()));
  let s = cache.get(text);
  if (!s) {
    const order = [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]) - 1);
    s = { stmt: db.prepare(text.replace(/\$\d+/g, '?')), order };
    cache.set(text, s);
  }
  // A list parameter is read by json_each.
  return { stmt: s.stmt, values: s.order.map((i) => (Array.isArray(params[i]) ? JSON.stringify(params[i]) : params[i])) };
}

const SQL = statsSql('sqlite');

/** Runs a rule of ./rollup.ts on `db`, in whatever transaction the caller holds. */
export function runSqliteRule<T>(db: Database.Database, rule: Rule<T>): T {
  let step = rule.next(undefined as never);
  while (!step.done) {
    const op = step.value;
    let rows: Row[] = [];
    if ('read' in op) {
      const s = stmt(db, SQL.read[op.read], op.params);
      rows = s.stmt.all(...s.values) as Row[];
    } else if ('write' in op) {
      const s = stmt(db, SQL.write[op.write], op.params);
      s.stmt.run(...s.values);
    } else {
      const insert = stmt(db, INSERT, []).stmt;
      for (const r of op.insert) insert.run(r.pipeline, r.minute, r.children ?? 0, r.cells, r.runs ?? null);
    }
    step = rule.next(rows);
  }
  return step.value;
}

export class SqliteStats {
  constructor(private readonly db: Database.Database) {}

  private run<T>(rule: Rule<T>): T {
    return runSqliteRule(this.db, rule);
  }

  /** What `Store.pipelineStats` answers; one read transaction, so the rollup and the raw rows agree. */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): PipelineStats {
    return this.db.transaction(() => this.run(statsQuery(pipeline, since, series)))();
  }

  /** One turn of the fold (see `foldBatch`), in one write transaction. */
  foldStats(now: number, options?: FoldOptions): FoldReport {
    return this.db.transaction(() => this.run(foldBatch(now, options))).immediate();
  }

  /** Folds again what a prune of `pipeline` before `before` made stale (`refoldPlan`), a day per transaction. */
  refoldStats(pipeline: string, before: number): number {
    let runs = 0;
    for (const { pipeline: p, first, end } of this.db.transaction(() => this.run(refoldPlan(pipeline, before)))()) {
      for (let from = first; from < end; from += REFOLD_MINUTES) {
        runs += this.db.transaction(() => this.run(refoldRange(p, from, Math.min(end, from + REFOLD_MINUTES)))).immediate();
      }
    }
    return runs;
  }

}

const INSERT = `INSERT INTO stats_rollup (pipeline, minute, children, cells, runs) VALUES ($1, $2, $3, $4, $5)`;
