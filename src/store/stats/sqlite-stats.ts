import type Database from 'better-sqlite3';
import type { DurationStats, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';
import { noDurations, percentilesOf, type HistogramRow } from './percentiles.js';

/**
 * Pipeline stats on SQLite with bounded memory: counts and sums are aggregated by SQLite, and percentiles come
 * from a histogram (one row per distinct duration, sorted by SQLite's sorter, which spills to disk) walked once
 * in order; JavaScript holds at most the distinct durations of one step, never one value per attempt.
 */
const SQL = {
  // @pipeline @since
  runStatuses: `SELECT status, COUNT(*) AS n, COUNT(finished_at) AS finished FROM runs WHERE pipeline = @pipeline AND created_at >= @since GROUP BY status`,
  // @pipeline @since: one row per distinct run duration
  runHistogram: `SELECT 0 AS key, finished_at - COALESCE(started_at, created_at) AS ms, COUNT(*) AS n FROM runs
                 WHERE pipeline = @pipeline AND created_at >= @since AND finished_at IS NOT NULL GROUP BY ms ORDER BY ms`,
  // @pipeline @since
  stepStatuses: `SELECT s.name, s.status, MIN(s.seq) AS seq, COUNT(*) AS n FROM steps s JOIN runs r ON r.id = s.run_id
                 WHERE r.pipeline = @pipeline AND r.created_at >= @since GROUP BY s.name, s.status`,
  // @pipeline @since: finished attempts per step and distinct duration (NULL first), with their usage; one pass
  attempts: `SELECT a.step AS key, a.processing_ms AS ms, COUNT(*) AS n,
                    TOTAL(json_extract(a.usage, '$.tokensIn')) AS tokens_in, TOTAL(json_extract(a.usage, '$.tokensOut')) AS tokens_out,
                    TOTAL(json_extract(a.usage, '$.cost')) AS cost
             FROM attempts a JOIN runs r ON r.id = a.run_id
             WHERE r.pipeline = @pipeline AND r.created_at >= @since AND a.finished_at IS NOT NULL
             GROUP BY a.step, a.processing_ms ORDER BY a.step, a.processing_ms`,
  // @pipeline @since @until @width @last: runs per bucket and status, with how many finished
  seriesRuns: `SELECT MIN(@last, MAX(0, CAST((created_at - @since) / @width AS INTEGER))) AS bucket, status, COUNT(*) AS n, COUNT(finished_at) AS finished
               FROM runs WHERE pipeline = @pipeline AND created_at >= @since AND created_at < @until GROUP BY bucket, status`,
  // @pipeline @since @until @width @last: one row per bucket and distinct run duration
  seriesHistogram: `SELECT MIN(@last, MAX(0, CAST((created_at - @since) / @width AS INTEGER))) AS key, finished_at - COALESCE(started_at, created_at) AS ms, COUNT(*) AS n
                    FROM runs WHERE pipeline = @pipeline AND created_at >= @since AND created_at < @until AND finished_at IS NOT NULL
                    GROUP BY key, ms ORDER BY key, ms`,
  // @pipeline @since @until @width @last: attempt usage per bucket of its run's creation
  seriesUsage: `SELECT MIN(@last, MAX(0, CAST((r.created_at - @since) / @width AS INTEGER))) AS bucket,
                       TOTAL(json_extract(a.usage, '$.tokensIn')) AS tokens_in, TOTAL(json_extract(a.usage, '$.tokensOut')) AS tokens_out,
                       TOTAL(json_extract(a.usage, '$.cost')) AS cost
                FROM attempts a JOIN runs r ON r.id = a.run_id
                WHERE r.pipeline = @pipeline AND r.created_at >= @since AND r.created_at < @until AND a.usage IS NOT NULL GROUP BY bucket`,
} as const;

type Key = keyof typeof SQL;

interface AttemptTotals {
  step: string;
  attempts: number;
  timed: number;
  tokens_in: number;
  tokens_out: number;
  cost: number;
}

/** Finished attempts of one step with one duration (null: none recorded). */
interface AttemptGroup extends Usage {
  key: string;
  ms: number | null;
  n: number;
}

/**
 * Per-step totals and duration percentiles from attempt groups sorted by (step, duration): one step's distinct
 * durations are held at a time (their count is needed before their ranks), never the attempts themselves.
 */
function stepDurations(groups: Iterable<AttemptGroup>): { totals: AttemptTotals[]; durations: Map<string | number, DurationStats> } {
  const totals: AttemptTotals[] = [];
  const durations = new Map<string | number, DurationStats>();
  let timed: HistogramRow[] = [];
  let current: AttemptTotals | undefined;
  const flush = () => {
    if (!current) return;
    for (const [k, d] of percentilesOf(timed, new Map([[current.step, current.timed]]))) durations.set(k, d);
    timed = [];
  };
  for (const g of groups) {
    if (current?.step !== g.key) {
      flush();
      current = { step: g.key, attempts: 0, timed: 0, tokens_in: 0, tokens_out: 0, cost: 0 };
      totals.push(current);
    }
    current.attempts += g.n;
    current.tokens_in += g.tokens_in;
    current.tokens_out += g.tokens_out;
    current.cost += g.cost;
    if (g.ms === null) continue;
    current.timed += g.n;
    timed.push({ key: g.key, ms: g.ms, n: g.n });
  }
  flush();
  return { totals, durations };
}

interface Usage {
  tokens_in: number;
  tokens_out: number;
  cost: number;
}

/** Stats of one pipeline over a SQLite connection; statements are prepared once. */
export class SqliteStats {
  private readonly prepared = new Map<Key, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private stmt(key: Key): Database.Statement {
    let s = this.prepared.get(key);
    if (!s) {
      s = this.db.prepare(SQL[key]);
      this.prepared.set(key, s);
    }
    return s;
  }

  /** What `Store.pipelineStats` answers; reads run in one transaction so the parts agree. */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): PipelineStats {
    return this.db.transaction(() => {
      const stats = this.totals(pipeline, since);
      return series ? { ...stats, series: this.series(pipeline, since, series) } : stats;
    })();
  }

  private totals(pipeline: string, since: number): PipelineStats {
    const params = { pipeline, since };
    const statuses = this.stmt('runStatuses').all(params) as Array<{ status: string; n: number; finished: number }>;
    const byStatus = Object.fromEntries(statuses.map((r) => [r.status, r.n]));
    const finished = statuses.reduce((a, r) => a + r.finished, 0);
    const runs = percentilesOf(this.stmt('runHistogram').iterate(params) as Iterable<HistogramRow>, new Map([[0, finished]]));
    const { totals, durations } = stepDurations(this.stmt('attempts').iterate(params) as Iterable<AttemptGroup>);
    const steps = this.stepRows(pipeline, since, totals, durations);
    const sum = (k: keyof Usage) => totals.reduce((a, t) => a + t[k], 0);
    return { pipeline, since, runs: { byStatus, duration: runs.get(0) ?? noDurations() }, steps, tokensIn: sum('tokens_in'), tokensOut: sum('tokens_out'), cost: sum('cost') };
  }

  private stepRows(pipeline: string, since: number, totals: AttemptTotals[], durations: Map<string | number, PipelineStats['steps'][number]['duration']>): PipelineStats['steps'] {
    return assembleSteps(this.stmt('stepStatuses').all({ pipeline, since }) as StepStatusRow[], totals, durations);
  }

  private series(pipeline: string, since: number, series: SeriesOptions): StatsBucket[] {
    const count = Math.max(1, Math.floor(series.buckets));
    const width = Math.max(1, (series.until - since) / count);
    const params = { pipeline, since, until: series.until, width, last: count - 1 };
    const buckets = emptyBuckets(since, width, count);
    const finished = new Map<number, number>();
    for (const r of this.stmt('seriesRuns').all(params) as Array<{ bucket: number; status: string; n: number; finished: number }>) {
      buckets[r.bucket]!.byStatus[r.status] = r.n;
      finished.set(r.bucket, (finished.get(r.bucket) ?? 0) + r.finished);
    }
    const durations = percentilesOf(this.stmt('seriesHistogram').iterate(params) as Iterable<HistogramRow>, finished);
    for (const [i, d] of durations) buckets[Number(i)]!.duration = d;
    for (const u of this.stmt('seriesUsage').all(params) as Array<Usage & { bucket: number }>) {
      Object.assign(buckets[u.bucket]!, { tokensIn: u.tokens_in, tokensOut: u.tokens_out, cost: u.cost });
    }
    return buckets;
  }
}

export interface StepStatusRow {
  name: string;
  status: string;
  seq: number | string;
  n: number | string;
}

/** Steps in definition order, with their counts by status, attempt totals and duration percentiles. */
export function assembleSteps(
  statuses: StepStatusRow[],
  totals: Array<{ step: string; attempts: number | string; tokens_in: number | string; tokens_out: number | string; cost: number | string }>,
  durations: Map<string | number, PipelineStats['steps'][number]['duration']>,
): PipelineStats['steps'] {
  const steps = new Map<string, PipelineStats['steps'][number] & { seq: number }>();
  const stepOf = (name: string) => {
    let s = steps.get(name);
    if (!s) {
      s = { name, seq: Number.MAX_SAFE_INTEGER, byStatus: {}, duration: noDurations(), attempts: 0, tokensIn: 0, tokensOut: 0, cost: 0 };
      steps.set(name, s);
    }
    return s;
  };
  for (const r of statuses) {
    const s = stepOf(r.name);
    s.seq = Math.min(s.seq, Number(r.seq));
    s.byStatus[r.status] = Number(r.n);
  }
  for (const t of totals) {
    Object.assign(stepOf(t.step), { attempts: Number(t.attempts), tokensIn: Number(t.tokens_in), tokensOut: Number(t.tokens_out), cost: Number(t.cost) });
    stepOf(t.step).duration = durations.get(t.step) ?? noDurations();
  }
  return [...steps.values()].sort((a, b) => a.seq - b.seq).map(({ seq: _seq, ...rest }) => rest);
}

/** `count` equal spans from `since`, each empty. */
export function emptyBuckets(since: number, width: number, count: number): StatsBucket[] {
  return Array.from({ length: count }, (_, i) => ({
    start: Math.round(since + i * width),
    end: Math.round(since + (i + 1) * width),
    byStatus: {},
    duration: noDurations(),
    tokensIn: 0,
    tokensOut: 0,
    cost: 0,
  }));
}
