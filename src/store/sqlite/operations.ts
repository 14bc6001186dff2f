import type Database from 'better-sqlite3';
import type { FoldOptions, FoldReport } from '../stats/rollup.js';
import { SqliteStats } from '../stats/sqlite-stats.js';
import type { DurationStats, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';

/** Pipeline stats of the SQLite store; the other server features are written once (../features/operations.ts). */
export class SqliteOperations {
  private readonly stats: SqliteStats;

  constructor(db: Database.Database) {
    this.stats = new SqliteStats(db);
  }

  /** Counts, sums and percentiles computed by SQLite with bounded memory (../stats/sqlite-stats.ts). */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): PipelineStats {
    return this.stats.pipelineStats(pipeline, since, series);
  }

  /** One turn of the stats fold (../stats/rollup.ts). */
  foldStats(now: number, options?: FoldOptions): FoldReport {
    return this.stats.foldStats(now, options);
  }

  /** Folds the stats rollup again up to `before` after a prune. */
  refoldStats(pipeline: string, before: number): number {
    return this.stats.refoldStats(pipeline, before);
  }
}

function emptyDuration(): DurationStats {
  return { count: 0, p50: null, p95: null, p99: null };
}

interface SeriesRun {
  created_at: number;
  status: string;
  ms: number | null;
}

interface Usage {
  tokensIn?: number;
  tokensOut?: number;
  cost?: number;
}

/** Sorts runs and attempt usage (each with its run's creation time) into `series.buckets` equal spans. */
export function bucketStats(since: number, series: SeriesOptions, runs: SeriesRun[], usage: Array<{ created_at: number; usage: Usage | null }>): StatsBucket[] {
  const count = Math.max(1, Math.floor(series.buckets));
  const width = Math.max(1, (series.until - since) / count);
  const buckets = Array.from({ length: count }, (_, i) => ({
    start: Math.round(since + i * width),
    end: Math.round(since + (i + 1) * width),
    byStatus: {} as Record<string, number>,
    durations: [] as number[],
    tokensIn: 0,
    tokensOut: 0,
    cost: 0,
  }));
  const at = (t: number) => buckets[Math.min(count - 1, Math.max(0, Math.floor((Number(t) - since) / width)))]!;
  for (const r of runs) {
    const b = at(r.created_at);
    b.byStatus[r.status] = (b.byStatus[r.status] ?? 0) + 1;
    if (r.ms !== null) b.durations.push(Number(r.ms));
  }
  for (const u of usage) {
    const b = at(u.created_at);
    b.tokensIn += u.usage?.tokensIn ?? 0;
    b.tokensOut += u.usage?.tokensOut ?? 0;
    b.cost += u.usage?.cost ?? 0;
  }
  return buckets.map(({ durations, ...rest }) => ({ ...rest, duration: durationStats(durations) }));
}

/** Nearest-rank percentiles. */
export function durationStats(values: number[]): DurationStats {
  if (values.length === 0) return emptyDuration();
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99) };
}
