import type pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import type { StepItem } from '../../core/step-results.js';
import { pgPipelineStats } from '../stats/pg-stats.js';
import type { ApiRole, ApiToken, AttemptLease, NewApiToken, PipelineStats, SeriesOptions } from '../store.js';
import { sql } from './pg-store-sql.js';
import { pgJson } from './pg-json.js';

/** SQL of the server features on PostgreSQL; each statement lists its parameters. */
const SQL = {
  // (none). With concurrent writers a lower id may still commit after this answer.
  latestEventId: `SELECT COALESCE(MAX(id), 0) AS id FROM events`,
  // (none)
  queueDepth: `SELECT count(*) AS n FROM attempts WHERE status = 'queued'`,
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

  /** Counts, sums and percentiles computed by the server (../stats/pg-stats.ts). */
  pipelineStats(pipeline: string, since: number, series?: SeriesOptions): Promise<PipelineStats> {
    return pgPipelineStats(this.run, pipeline, since, series);
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
