import type pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import type { StepItem } from '../../core/step-results.js';
// eslint-disable-next-line no-restricted-imports -- the stats helpers stay in sqlite/operations.ts while the stats queries are reworked
import { bucketStats, durationStats } from '../sqlite/operations.js';
import type { ApiRole, ApiToken, AttemptLease, NewApiToken, PipelineStats, SeriesOptions } from '../store.js';
import { sql } from './pg-store-sql.js';
import { pgJson } from './pg-json.js';

/** SQL of the server features on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // (none). With concurrent writers a lower id may still commit after this answer.
  latestEventId: `SELECT COALESCE(MAX(id), 0) AS id FROM events`,
  // (none)
  queueDepth: `SELECT count(*) AS n FROM attempts WHERE status = 'queued'`,
  // $1 pipeline $2 since
  runStatuses: `SELECT status, count(*) AS n FROM runs WHERE pipeline = $1 AND created_at >= $2 GROUP BY status`,
  // $1 pipeline $2 since
  runDurations: `SELECT finished_at - COALESCE(started_at, created_at) AS ms FROM runs
                 WHERE pipeline = $1 AND created_at >= $2 AND finished_at IS NOT NULL`,
  // $1 pipeline $2 since
  stepStatuses: `SELECT s.name, s.status, MIN(s.seq) AS seq, count(*) AS n FROM steps s JOIN runs r ON r.id = s.run_id
                 WHERE r.pipeline = $1 AND r.created_at >= $2 GROUP BY s.name, s.status`,
  // $1 pipeline $2 since
  attempts: `SELECT a.step, a.processing_ms, a.usage FROM attempts a JOIN runs r ON r.id = a.run_id
             WHERE r.pipeline = $1 AND r.created_at >= $2 AND a.finished_at IS NOT NULL`,
  // $1 pipeline $2 since $3 until
  seriesRuns: `SELECT created_at, status, CASE WHEN finished_at IS NULL THEN NULL ELSE finished_at - COALESCE(started_at, created_at) END AS ms
               FROM runs WHERE pipeline = $1 AND created_at >= $2 AND created_at < $3`,
  // $1 pipeline $2 since $3 until
  seriesUsage: `SELECT r.created_at, a.usage FROM attempts a JOIN runs r ON r.id = a.run_id
                WHERE r.pipeline = $1 AND r.created_at >= $2 AND r.created_at < $3 AND a.usage IS NOT NULL`,
  // $1 hash $2 role $3 name $4 created_at
  insertToken: `INSERT INTO api_tokens (hash, role, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
  // $1 hash
  token: `SELECT * FROM api_tokens WHERE hash = $1`,
  // (none)
  listTokens: `SELECT * FROM api_tokens ORDER BY id`,
  // $1 id $2 now
  revokeToken: `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *`,
  // (none)
  countTokens: `SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL`,
  // $1 pipeline $2 slot $3 now
  claimSlot: `INSERT INTO trigger_slots (pipeline, slot, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
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

const msOrNull = (v: number | string | null) => (v === null ? null : Number(v));

function toApiToken(row: TokenRow): ApiToken {
  return { id: row.id, hash: row.hash, role: row.role, name: row.name, createdAt: Number(row.created_at), expiresAt: msOrNull(row.expires_at), revokedAt: msOrNull(row.revoked_at) };
}

type StepStats = PipelineStats['steps'][number] & { seq: number; durations: number[] };

/**
 * The server features of the PostgreSQL store (tokens, trigger slots, stats). Each method is one statement,
 * so one implicit transaction; `run` is the store's retrying statement runner.
 */
export class PgOperations {
  constructor(private readonly run: <R extends pg.QueryResultRow>(sql: string, values: unknown[]) => Promise<pg.QueryResult<R>>) {}

  private async rows<R extends pg.QueryResultRow>(key: keyof typeof SQL, values: unknown[] = []): Promise<R[]> {
    return (await this.run<R>(SQL[key], values)).rows;
  }

  async latestEventId(): Promise<number> {
    return (await this.rows<{ id: number }>('latestEventId'))[0]!.id;
  }

  async queueDepth(): Promise<number> {
    return (await this.rows<{ n: number }>('queueDepth'))[0]!.n;
  }

  async pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    const stats = await this.totalStats(pipeline, since);
    if (!series) return stats;
    const params = [pipeline, since, series.until];
    const runs = await this.rows<{ created_at: number; status: string; ms: number | null }>('seriesRuns', params);
    const usage = await this.rows<{ created_at: number; usage: string | object }>('seriesUsage', params);
    const parsed = usage.map((u) => ({ created_at: Number(u.created_at), usage: typeof u.usage === 'string' ? JSON.parse(u.usage) : u.usage }));
    const numeric = runs.map((r) => ({ created_at: Number(r.created_at), status: r.status, ms: r.ms === null ? null : Number(r.ms) }));
    return { ...stats, series: bucketStats(since, series, numeric, parsed) };
  }

  private async totalStats(pipeline: string, since: number): Promise<PipelineStats> {
    const params = [pipeline, since];
    const runStatuses = await this.rows<{ status: string; n: number }>('runStatuses', params);
    const runDurations = (await this.rows<{ ms: number }>('runDurations', params)).map((r) => r.ms);
    const steps = new Map<string, StepStats>();
    const stepOf = (name: string, seq = Number.MAX_SAFE_INTEGER) => {
      let s = steps.get(name);
      if (!s) {
        s = { name, seq, byStatus: {}, duration: durationStats([]), attempts: 0, tokensIn: 0, tokensOut: 0, cost: 0, durations: [] };
        steps.set(name, s);
      }
      return s;
    };
    for (const r of await this.rows<{ name: string; status: string; seq: number; n: number }>('stepStatuses', params)) {
      const s = stepOf(r.name, r.seq);
      s.seq = Math.min(s.seq, r.seq);
      s.byStatus[r.status] = r.n;
    }
    const total = { tokensIn: 0, tokensOut: 0, cost: 0 };
    for (const a of await this.rows<{ step: string; processing_ms: number | null; usage: string | null }>('attempts', params)) {
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
    const stepList = [...steps.values()].sort((a, b) => a.seq - b.seq).map(({ seq: _seq, durations, ...rest }) => ({ ...rest, duration: durationStats(durations) }));
    const byStatus = Object.fromEntries(runStatuses.map((r) => [r.status, r.n]));
    return { pipeline, since, runs: { byStatus, duration: durationStats(runDurations) }, steps: stepList, ...total };
  }

  async createToken(token: NewApiToken, now: number): Promise<ApiToken> {
    const [row] = await this.rows<{ id: number }>('insertToken', [token.hash, token.role, token.name, now, token.expiresAt]);
    return { ...token, id: row!.id, createdAt: now, revokedAt: null };
  }

  async findToken(hash: string): Promise<ApiToken | undefined> {
    const [row] = await this.rows<TokenRow>('token', [hash]);
    return row ? toApiToken(row) : undefined;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.rows<TokenRow>('listTokens')).map(toApiToken);
  }

  async revokeToken(id: number, now: number): Promise<ApiToken | undefined> {
    const [row] = await this.rows<TokenRow>('revokeToken', [id, now]);
    return row ? toApiToken(row) : undefined;
  }

  async countTokens(): Promise<number> {
    return (await this.rows<{ n: number }>('countTokens'))[0]!.n;
  }

  async claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean> {
    return ((await this.run(SQL.claimSlot, [pipeline, slot, now])).rowCount ?? 0) === 1;
  }
}

/**
 * Takes one request (and `tokens` estimated tokens) from the shared per-minute budget of `key`, inside a
 * transaction; returns 0 when granted, else the milliseconds until the budget renews.
 */
export async function takeRateIn(client: pg.ClientBase, key: string, limits: { rpm?: number | undefined; tpm?: number | undefined }, tokens: number, now: number): Promise<number> {
  const window = Math.floor(now / 60_000);
  // Workers of every process take from one budget: one taker per key at a time.
  await sql(client, 'xactLock', [`rate:${key}`]);
  const [used = { requests: 0, tokens: 0 }] = await sql<{ requests: number; tokens: number }>(client, 'rateWindow', [key, window]);
  const overRequests = limits.rpm !== undefined && used.requests + 1 > limits.rpm;
  // A request larger than the whole token budget goes alone into an empty window rather than never.
  const overTokens = limits.tpm !== undefined && used.tokens > 0 && used.tokens + tokens > limits.tpm;
  if (overRequests || overTokens) return (window + 1) * 60_000 - now;
  await sql(client, 'takeRate', [key, window, tokens]);
  if (used.requests === 0) await sql(client, 'pruneRates', [window - 5]);
  return 0;
}

export interface StepItemRow {
  idx: number;
  status: StepItem['status'];
  output: string | null;
  error: string | null;
}

export function toStepItem(r: StepItemRow): StepItem {
  return {
    index: r.idx,
    status: r.status,
    ...(r.output === null ? {} : { output: JSON.parse(r.output) as unknown }),
    ...(r.error === null ? {} : { error: JSON.parse(r.error) as StepItem['error'] }),
  };
}

/** Records per-item results inside a transaction; LEASE_LOST unless `lease` still holds the step's attempt. */
export async function saveStepItemsIn(client: pg.ClientBase, lease: AttemptLease, runId: string, step: string, items: StepItem[], now: number): Promise<void> {
  if ((await sql(client, 'holdsLease', [lease.attemptId, lease.fence, lease.owner])).length === 0) {
    throw new SluiceError('LEASE_LOST', `attempt ${lease.attemptId} of step ${step} no longer holds its lease; its item results are not recorded`);
  }
  for (const item of items) {
    const output = item.output === undefined ? null : pgJson(item.output);
    const error = item.error === undefined ? null : pgJson(item.error);
    await sql(client, 'putStepItem', [runId, step, item.index, item.status, output, error, now]);
  }
}
