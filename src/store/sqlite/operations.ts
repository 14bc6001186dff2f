import type Database from 'better-sqlite3';
import { Statements } from './statements.js';
import { SqliteStats } from '../stats/sqlite-stats.js';
import type { ApiRole, ApiToken, DurationStats, NewApiToken, PipelineStats, SeriesOptions, StatsBucket } from '../store.js';

/** SQL of the server features; each statement lists its named parameters. */
const SQL = {
  latestEventId: `SELECT COALESCE(MAX(id), 0) AS id FROM events`,
  queueDepth: `SELECT COUNT(*) AS n FROM attempts WHERE status = 'queued'`,
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
  private readonly stats: SqliteStats;

  constructor(
    private readonly db: Database.Database,
    /** The store's BEGIN IMMEDIATE transaction wrapper. */
    private readonly write: <T>(fn: () => T) => T,
  ) {
    this.statements = new Statements(db, SQL);
    this.stats = new SqliteStats(db);
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

  /** Counts, sums and percentiles computed by SQLite with bounded memory (../stats/sqlite-stats.ts). */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): PipelineStats {
    return this.stats.pipelineStats(pipeline, since, series);
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
