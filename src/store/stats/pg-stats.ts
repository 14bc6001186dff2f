import type pg from 'pg';
import type { DurationStats, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';
import { noDurations } from './percentiles.js';
import { assembleSteps, emptyBuckets, type StepStatusRow } from './sqlite-stats.js';

/**
 * Pipeline stats on PostgreSQL, computed by the server: counts, sums and nearest-rank percentiles
 * (`percentile_disc`, which takes the first value whose rank reaches the fraction, as `durationStats` does).
 * Only aggregates cross the wire.
 */
const SQL = {
  // $1 pipeline $2 since
  runs: `SELECT status, count(*) AS n FROM runs WHERE pipeline = $1 AND created_at >= $2 GROUP BY status`,
  // $1 pipeline $2 since
  runDurations: `SELECT count(*) AS count, percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY finished_at - COALESCE(started_at, created_at)) AS p
                 FROM runs WHERE pipeline = $1 AND created_at >= $2 AND finished_at IS NOT NULL`,
  // $1 pipeline $2 since
  stepStatuses: `SELECT s.name, s.status, MIN(s.seq) AS seq, count(*) AS n FROM steps s JOIN runs r ON r.id = s.run_id
                 WHERE r.pipeline = $1 AND r.created_at >= $2 GROUP BY s.name, s.status`,
  // $1 pipeline $2 since: finished attempts per step, percentiles of those with a duration, and their usage
  attempts: `SELECT a.step, count(*) AS attempts, count(a.processing_ms) AS timed,
                    percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY a.processing_ms) AS p,
                    COALESCE(sum((a.usage->>'tokensIn')::float8), 0) AS tokens_in, COALESCE(sum((a.usage->>'tokensOut')::float8), 0) AS tokens_out,
                    COALESCE(sum((a.usage->>'cost')::float8), 0) AS cost
             FROM attempts a JOIN runs r ON r.id = a.run_id
             WHERE r.pipeline = $1 AND r.created_at >= $2 AND a.finished_at IS NOT NULL GROUP BY a.step`,
  // $1 pipeline $2 since $3 until $4 width $5 last bucket: runs per bucket and status
  seriesRuns: `SELECT LEAST($5::int, GREATEST(0, floor((created_at - $2) / $4::float8)::int)) AS bucket, status, count(*) AS n
               FROM runs WHERE pipeline = $1 AND created_at >= $2 AND created_at < $3 GROUP BY bucket, status`,
  // $1 pipeline $2 since $3 until $4 width $5 last bucket: run durations per bucket
  seriesDurations: `SELECT LEAST($5::int, GREATEST(0, floor((created_at - $2) / $4::float8)::int)) AS bucket, count(*) AS count,
                           percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY finished_at - COALESCE(started_at, created_at)) AS p
                    FROM runs WHERE pipeline = $1 AND created_at >= $2 AND created_at < $3 AND finished_at IS NOT NULL GROUP BY bucket`,
  // $1 pipeline $2 since $3 until $4 width $5 last bucket: usage per bucket of the attempt's run creation
  seriesUsage: `SELECT LEAST($5::int, GREATEST(0, floor((r.created_at - $2) / $4::float8)::int)) AS bucket,
                       COALESCE(sum((a.usage->>'tokensIn')::float8), 0) AS tokens_in, COALESCE(sum((a.usage->>'tokensOut')::float8), 0) AS tokens_out,
                       COALESCE(sum((a.usage->>'cost')::float8), 0) AS cost
                FROM attempts a JOIN runs r ON r.id = a.run_id
                WHERE r.pipeline = $1 AND r.created_at >= $2 AND r.created_at < $3 AND a.usage IS NOT NULL GROUP BY bucket`,
} as const;

type Query = <R extends pg.QueryResultRow>(sql: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

interface PercentileRow {
  count: string | number;
  p: Array<string | number> | null;
}

function toDuration(row: PercentileRow | undefined, count = Number(row?.count ?? 0)): DurationStats {
  if (!row?.p || count === 0) return noDurations(count);
  const [p50, p95, p99] = row.p.map(Number);
  return { count, p50: p50 ?? null, p95: p95 ?? null, p99: p99 ?? null };
}

/** What `Store.pipelineStats` answers, over the store's statement runner. */
export async function pgPipelineStats(query: Query, pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
  const rows = async <R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[]) => (await query<R>(SQL[key], values)).rows;
  const params = [pipeline, since];
  const byStatus = Object.fromEntries((await rows<{ status: string; n: string }>('runs', params)).map((r) => [r.status, Number(r.n)]));
  const [runDurations] = await rows<PercentileRow>('runDurations', params);
  const statuses = await rows<StepStatusRow & pg.QueryResultRow>('stepStatuses', params);
  const attempts = await rows<PercentileRow & { step: string; attempts: string; timed: string; tokens_in: number; tokens_out: number; cost: number }>('attempts', params);
  const durations = new Map<string | number, DurationStats>(attempts.map((a) => [a.step, toDuration(a, Number(a.timed))]));
  const sum = (k: 'tokens_in' | 'tokens_out' | 'cost') => attempts.reduce((acc, a) => acc + Number(a[k]), 0);
  const stats: PipelineStats = {
    pipeline,
    since,
    runs: { byStatus, duration: toDuration(runDurations) },
    steps: assembleSteps(statuses, attempts, durations),
    tokensIn: sum('tokens_in'),
    tokensOut: sum('tokens_out'),
    cost: sum('cost'),
  };
  return series ? { ...stats, series: await seriesOf(rows, pipeline, since, series) } : stats;
}

async function seriesOf(
  rows: <R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[]) => Promise<R[]>,
  pipeline: string,
  since: number,
  series: SeriesOptions,
): Promise<StatsBucket[]> {
  const count = Math.max(1, Math.floor(series.buckets));
  const width = Math.max(1, (series.until - since) / count);
  const params = [pipeline, since, series.until, width, count - 1];
  const buckets = emptyBuckets(since, width, count);
  for (const r of await rows<{ bucket: number; status: string; n: string }>('seriesRuns', params)) buckets[r.bucket]!.byStatus[r.status] = Number(r.n);
  for (const r of await rows<PercentileRow & { bucket: number }>('seriesDurations', params)) buckets[r.bucket]!.duration = toDuration(r);
  for (const u of await rows<{ bucket: number; tokens_in: number; tokens_out: number; cost: number }>('seriesUsage', params)) {
    Object.assign(buckets[u.bucket]!, { tokensIn: Number(u.tokens_in), tokensOut: Number(u.tokens_out), cost: Number(u.cost) });
  }
  return buckets;
}
