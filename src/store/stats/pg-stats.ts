import type pg from 'pg';
import type { PipelineStats, SeriesOptions } from '../store.js';
import { foldBatch, refoldPlan, refoldRange, statsQuery, type FoldOptions, type FoldReport, type Row, type Rule } from './rollup.js';
import { REFOLD_MINUTES } from './sqlite-stats.js';
import { statsSql } from './stats-sql.js';
import { type RollupRow } from './tally.js';

type Query = <R extends pg.QueryResultRow>(sql: string, values: unknown[]) => Promise<pg.QueryResult<R>>;
type Transaction = <T>(fn: (client: pg.ClientBase) => Promise<T>) => Promise<T>;

const SQL = statsSql('pg');
/** Rollup rows per INSERT. */
const INSERT_CHUNK = 5000;

const used = new Map<string, number>();

/** The parameters a statement uses (rules pass the same list to statements that use a prefix of it). */
function fit(text: string, params: unknown[]): unknown[] {
  let n = used.get(text);
  if (n === undefined) used.set(text, (n = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))));
  return params.length > n ? params.slice(0, n) : params;
}

/** Runs a rule of ./rollup.ts over `query`, in whatever transaction the caller holds. */
export async function runPgRule<T>(query: Query, rule: Rule<T>): Promise<T> {
  let step = rule.next(undefined as never);
  while (!step.done) {
    const op = step.value;
    let rows: Row[] = [];
    if ('read' in op && BY_KEY.has(op.read)) {
      await query(JOINS_BY_KEY, ['off']);
      rows = (await query(SQL.read[op.read], fit(SQL.read[op.read], op.params))).rows;
      await query(JOINS_BY_KEY, ['on']);
    } else if ('read' in op) rows = (await query(SQL.read[op.read], fit(SQL.read[op.read], op.params))).rows;
    else if ('write' in op) await query(SQL.write[op.write], fit(SQL.write[op.write], op.params));
    else for (let i = 0; i < op.insert.length; i += INSERT_CHUNK) await insert(query, op.insert.slice(i, i + INSERT_CHUNK));
    step = rule.next(rows);
  }
  return step.value;
}

/** Rollup rows in one statement, one array per column. */
async function insert(query: Query, rows: RollupRow[]): Promise<void> {
  const bytes = (b: Uint8Array | undefined) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : null);
  await query(`INSERT INTO stats_rollup (pipeline, minute, children, cells, runs) SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bytea[], $5::bytea[])`, [
    rows.map((r) => r.pipeline),
    rows.map((r) => r.minute),
    rows.map((r) => r.children ?? 0),
    rows.map((r) => bytes(r.cells)),
    rows.map((r) => bytes(r.runs)),
  ]);
}

/**
 * No JIT: the stats statements are short, and compiling a plan took longer than running it. No parallel workers:
 * each read of finished attempts appends two joins (`attempts` and `steps`, see ./stats-sql.ts), which the planner
 * would hand to workers that take longer to start than the reads take by key.
 */
const PLAN = 'SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0';

/**
 * Statements that read the runs of listed minutes, and their steps and attempts, by key. The planner cannot
 * estimate a list of minutes (it takes a minute for a ninth of the pipeline's runs) and may hash the whole
 * attempts table to read a few thousand rows, or read all of it and look each row's run up (a memoized index
 * scan): `attempts` holds only earlier attempts, so it is small next to that estimate. Hash and merge joins and
 * memoized lookups are off for these statements only.
 */
const BY_KEY: ReadonlySet<string> = new Set(['qmRuns', 'qmSteps', 'qmAttempts', 'qmUsage']);
const JOINS_BY_KEY = `SELECT set_config('enable_hashjoin', $1, true), set_config('enable_mergejoin', $1, true), set_config('enable_memoize', $1, true)`;

/** One fold at a time across processes: the fold's transactions take this advisory lock. */
const FOLD_LOCK = `SELECT pg_advisory_xact_lock(hashtext('sluice:stats-fold'))`;

/**
 * Pipeline stats on PostgreSQL from the stats rollup (./rollup.ts): a question reads in one REPEATABLE READ
 * transaction (one snapshot of the rollup and the raw rows); each turn of the fold, and each day folded again after
 * a prune, is one transaction holding the fold lock.
 */
export class PgStats {
  constructor(private readonly tx: Transaction) {}

  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return this.tx(async (c) => {
      await c.query(`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; ${PLAN}`);
      return runPgRule((text, values) => c.query(text, values), statsQuery(pipeline, since, series));
    });
  }

  foldStats(now: number, options?: FoldOptions): Promise<FoldReport> {
    return this.locked((q) => runPgRule(q, foldBatch(now, options)));
  }

  /** Folds again what a prune of `pipeline` before `before` made stale (`refoldPlan`), a day per transaction. */
  async refoldStats(pipeline: string, before: number): Promise<number> {
    let runs = 0;
    for (const { pipeline: p, first, end } of await this.tx((c) => runPgRule((text, values) => c.query(text, values), refoldPlan(pipeline, before)))) {
      for (let from = first; from < end; from += REFOLD_MINUTES) {
        runs += await this.locked((q) => runPgRule(q, refoldRange(p, from, Math.min(end, from + REFOLD_MINUTES))));
      }
    }
    return runs;
  }


  private locked<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.tx(async (c) => {
      await c.query(`${PLAN}; ${FOLD_LOCK}`);
      return fn((text, values) => c.query(text, values));
    });
  }
}
