import { all, get, run, sql } from '../ledger/effects.js';
import type { ApiRole, ApiToken, DatasetPort, NewApiToken, TokenPort } from '../store.js';
import { AttributeValues } from './attribute-values.js';

const S = {
  // With concurrent writers (PostgreSQL) a lower id may still commit after this answer.
  latestEventId: sql('opLatestEventId', `SELECT COALESCE(MAX(id), 0) AS id FROM events`),
  // Queued attempts are steps' live ones: the partial index steps_queue holds them.
  queueDepth: sql('opQueueDepth', `SELECT count(*) AS n FROM steps WHERE attempt_status = 'queued'`),
  // $1 hash $2 role $3 name $4 created_at $5 expires_at
  insertToken: sql('opInsertToken', `INSERT INTO api_tokens (hash, role, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`),
  token: sql('opToken', `SELECT * FROM api_tokens WHERE hash = $1`),
  listTokens: sql('opListTokens', `SELECT * FROM api_tokens ORDER BY id`),
  // $1 id $2 now: a second revocation keeps the first time
  revokeToken: sql('opRevokeToken', `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *`),
  countTokens: sql('opCountTokens', `SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL`),
  // $1 pipeline $2 slot $3 now
  claimSlot: sql('opClaimSlot', `INSERT INTO trigger_slots (pipeline, slot, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
};

interface TokenRow {
  id: number;
  hash: string;
  role: ApiRole;
  name: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

const msOrNull = (v: number | null) => (v === null ? null : Number(v));

function toApiToken(row: TokenRow): ApiToken {
  return { id: Number(row.id), hash: row.hash, role: row.role, name: row.name, createdAt: Number(row.created_at), expiresAt: msOrNull(row.expires_at), revokedAt: msOrNull(row.revoked_at) };
}

/**
 * The `Store` methods both drivers answer with the same rules, over the driver's {@link FeatureRunner}: datasets,
 * eval cases and derived attribute values (the classes this one extends), and what the server reads and writes
 * besides runs (API tokens, cron trigger slots, the live stream's start, the queue depth). A driver extends this
 * class and gives its runner as `features`.
 */
export abstract class StoreFeatures extends AttributeValues implements DatasetPort, TokenPort {
  async latestEventId(): Promise<number> {
    return Number((await this.features.read(() => get<{ id: number }>(S.latestEventId, [])))!.id);
  }

  async queueDepth(): Promise<number> {
    return Number((await this.features.read(() => get<{ n: number }>(S.queueDepth, [])))!.n);
  }

  async createToken(token: NewApiToken, now: number): Promise<ApiToken> {
    const row = await this.features.write(() => get<{ id: number }>(S.insertToken, [token.hash, token.role, token.name, now, token.expiresAt]));
    return { ...token, id: Number(row!.id), createdAt: now, revokedAt: null };
  }

  async findToken(hash: string): Promise<ApiToken | undefined> {
    const row = await this.features.read(() => get<TokenRow>(S.token, [hash]));
    return row ? toApiToken(row) : undefined;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.features.read(() => all<TokenRow>(S.listTokens, []))).map(toApiToken);
  }

  async revokeToken(id: number, now: number): Promise<ApiToken | undefined> {
    const row = await this.features.write(() => get<TokenRow>(S.revokeToken, [id, now]));
    return row ? toApiToken(row) : undefined;
  }

  async countTokens(): Promise<number> {
    return Number((await this.features.read(() => get<{ n: number }>(S.countTokens, [])))!.n);
  }

  /** True for exactly one caller per (pipeline, slot) across every process sharing the store. */
  async claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean> {
    return (await this.features.write(() => run(S.claimSlot, [pipeline, slot, now]))) === 1;
  }
}
