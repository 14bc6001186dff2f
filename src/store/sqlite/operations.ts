import type Database from 'better-sqlite3';
import { Statements } from './statements.js';
import type { ApiRole, ApiToken, DurationStats, NewApiToken, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';

/** SQL of the server features; each statement lists its named parameters. */
const SQL = {
  latestEventId: `SELECT COALESCE(MAX(id), 0) AS id FROM events`,
  queueDepth: `SELECT COUNT(*) AS n FROM attempts WHERE status = 'queued'`,
  // @pipeline @since
  runStatuses: `SELECT status, COUNT(*) AS n FROM runs WHERE pipeline = @pipeline AND created_at >= @since GROUP BY status`,
  // @pipeline @since
  runDurations: `SELECT finished_at - COALESCE(started_at, created_at) AS ms FROM runs
                 WHERE pipeline = @pipeline AND created_at >= @since AND finished_at IS NOT NULL`,
  // @pipeline @since
  stepStatuses: `SELECT s.name, s.status, MIN(s.seq) AS seq, COUNT(*) AS n FROM steps s JOIN runs r ON r.id = s.run_id
                 WHERE r.pipeline = @pipeline AND r.created_at >= @since GROUP BY s.name, s.status`,
  // @pipeline @since
  attempts: `SELECT a.step, a.processing_ms, a.usage FROM attempts a JOIN runs r ON r.id = a.run_id
             WHERE r.pipeline = @pipeline AND r.created_at >= @since AND a.finished_at IS NOT NULL`,
  // @pipeline @since @until
  seriesRuns: `SELECT created_at, status, CASE WHEN finished_at IS NULL THEN NULL ELSE finished_at - COALESCE(started_at, created_at) END AS ms
               FROM runs WHERE pipeline = @pipeline AND created_at >= @since AND created_at < @until`,
  // @pipeline @since @until
  seriesUsage: `SELECT r.created_at, a.usage FROM attempts a JOIN runs r ON r.id = a.run_id
                WHERE r.pipeline = @pipeline AND r.created_at >= @since AND r.created_at < @until AND a.usage IS NOT NULL`,
  // @hash @role @name @created_at
  insertToken: `INSERT INTO api_tokens (hash, role, name, created_at, expires_at) VALUES (@hash, @role, @name, @created_at, @expires_at) RETURNING id`,
  // @hash
  token: `SELECT * FROM api_tokens WHERE hash = @hash`,
  listTokens: `SELECT * FROM api_tokens ORDER BY id`,
  // @id @now
  revokeToken: `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, @now) WHERE id = @id RETURNING *`,
  countTokens: `SELECT COUNT(*) AS n FROM api_tokens WHERE revoked_at IS NULL`,
  // @pipeline @slot @now
  claimSlot: `INSERT INTO trigger_slots (pipeline, slot, claimed_at) VALUES (@pipeline, @slot, @now) ON CONFLICT DO NOTHING`,
} as const;

interface TokenRow {
  id: number;
  hash: string;
  role: ApiRole;
  name: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

function toApiToken(row: TokenRow): ApiToken {
  return { id: row.id, hash: row.hash, role: row.role, name: row.name, createdAt: row.created_at, expiresAt: row.expires_at, revokedAt: row.revoked_at };
}

/** The server features of the SQLite store (tokens, trigger slots, stats), over the store's connection. */
export class SqliteOperations {
  private readonly statements: Statements<keyof typeof SQL>;

  constructor(
    private readonly db: Database.Database,
    /** The store's BEGIN IMMEDIATE transaction wrapper. */
    private readonly write: <T>(fn: () => T) => T,
  ) {
    this.statements = new Statements(db, SQL);
  }

  private stmt(key: keyof typeof SQL): Database.Statement {
    return this.statements.get(key);
  }

  latestEventId(): number {
    return (this.stmt('latestEventId').get() as { id: number }).id;
  }

  queueDepth(): number {
    return (this.stmt('queueDepth').get() as { n: number }).n;
  }

  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): PipelineStats {
    const stats = this.totalStats(pipeline, since);
    if (!series) return stats;
    const params = { pipeline, since, until: series.until };
    const runs = this.stmt('seriesRuns').all(params) as SeriesRun[];
    const usage = (this.stmt('seriesUsage').all(params) as Array<{ created_at: number; usage: string }>).map((u) => ({ created_at: u.created_at, usage: JSON.parse(u.usage) as Usage }));
    return { ...stats, series: bucketStats(since, series, runs, usage) };
  }

  private totalStats(pipeline: string, since: number): PipelineStats {
    const params = { pipeline, since };
    const runStatuses = this.stmt('runStatuses').all(params) as Array<{ status: string; n: number }>;
    const runDurations = (this.stmt('runDurations').all(params) as Array<{ ms: number }>).map((r) => r.ms);
    const steps = new Map<string, PipelineStats['steps'][number] & { seq: number; durations: number[] }>();
    const stepOf = (name: string, seq = Number.MAX_SAFE_INTEGER) => {
      let s = steps.get(name);
      if (!s) {
        s = { name, seq, byStatus: {}, duration: emptyDuration(), attempts: 0, tokensIn: 0, tokensOut: 0, cost: 0, durations: [] };
        steps.set(name, s);
      }
      return s;
    };
    for (const r of this.stmt('stepStatuses').all(params) as Array<{ name: string; status: string; seq: number; n: number }>) {
      const s = stepOf(r.name, r.seq);
      s.seq = Math.min(s.seq, r.seq);
      s.byStatus[r.status] = r.n;
    }
    const total = { tokensIn: 0, tokensOut: 0, cost: 0 };
    for (const a of this.stmt('attempts').all(params) as Array<{ step: string; processing_ms: number | null; usage: string | null }>) {
      const s = stepOf(a.step);
      s.attempts += 1;
      if (a.processing_ms !== null) s.durations.push(a.processing_ms);
      const usage = a.usage === null ? null : (JSON.parse(a.usage) as { tokensIn?: number; tokensOut?: number; cost?: number });
      for (const target of [s, total]) {
        target.tokensIn += usage?.tokensIn ?? 0;
        target.tokensOut += usage?.tokensOut ?? 0;
        target.cost += usage?.cost ?? 0;
      }
    }
    const stepList = [...steps.values()]
      .sort((a, b) => a.seq - b.seq)
      .map(({ seq: _seq, durations, ...rest }) => ({ ...rest, duration: durationStats(durations) }));
    return {
      pipeline,
      since,
      runs: { byStatus: Object.fromEntries(runStatuses.map((r) => [r.status, r.n])), duration: durationStats(runDurations) },
      steps: stepList,
      ...total,
    };
  }

  createToken(token: NewApiToken, now: number): ApiToken {
    return this.write(() => {
      const row = this.stmt('insertToken').get({ hash: token.hash, role: token.role, name: token.name, created_at: now, expires_at: token.expiresAt }) as { id: number };
      return { ...token, id: row.id, createdAt: now, revokedAt: null };
    });
  }

  findToken(hash: string): ApiToken | undefined {
    const row = this.stmt('token').get({ hash }) as TokenRow | undefined;
    return row ? toApiToken(row) : undefined;
  }

  listTokens(): ApiToken[] {
    return (this.stmt('listTokens').all() as TokenRow[]).map(toApiToken);
  }

  revokeToken(id: number, now: number): ApiToken | undefined {
    const row = this.write(() => this.stmt('revokeToken').get({ id, now }) as TokenRow | undefined);
    return row ? toApiToken(row) : undefined;
  }

  countTokens(): number {
    return (this.stmt('countTokens').get() as { n: number }).n;
  }

  claimTriggerSlot(pipeline: string, slot: number, now: number): boolean {
    return this.write(() => this.stmt('claimSlot').run({ pipeline, slot, now }).changes === 1);
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
