import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { SluiceError } from '../core/errors.js';
import type { ApiRole, ApiToken, Store } from '../store/store.js';

/**
 * Bearer-token auth. Roles: `viewer` reads (GET), `operator` also starts and controls runs and posts events,
 * `admin` also registers, disables and simulates pipelines. Tokens are random, shown once, stored as sha256.
 */

export const ROLES: readonly ApiRole[] = ['viewer', 'operator', 'admin'];
const RANK: Record<ApiRole, number> = { viewer: 0, operator: 1, admin: 2 };

/**
 * `on`: every /api route needs a token. `off`: no checks (loopback only). `auto` (default): on as soon as the
 * store holds at least one token.
 */
export type AuthMode = 'on' | 'off' | 'auto';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Creates a token with `role`; returns the token text, which is not stored anywhere. */
export async function createApiToken(store: Store, role: ApiRole, name: string | null, now = Date.now(), expiresAt: number | null = null): Promise<{ token: string; record: ApiToken }> {
  const token = `sluice_${randomBytes(24).toString('base64url')}`;
  const record = await store.createToken({ hash: hashToken(token), role, name, expiresAt }, now);
  return { token, record };
}

/** How long auth stays off before the store is asked again whether it holds a token. */
const CACHE_MS = 2000;
/** How long a token lookup is reused: a revocation by another process is honoured within this. */
const TOKEN_CACHE_MS = 1000;

/** Checks requests against the tokens of a store, caching lookups for a moment. */
export class Authenticator {
  private enabledUntil = 0;
  private enabled: boolean;
  private readonly cache = new Map<string, { token: ApiToken | undefined; until: number }>();

  constructor(
    private readonly store: Store,
    readonly mode: AuthMode,
  ) {
    this.enabled = mode === 'on';
  }

  /** Whether requests must carry a token now. */
  async isEnabled(): Promise<boolean> {
    if (this.mode !== 'auto' || this.enabled) return this.enabled;
    if (Date.now() < this.enabledUntil) return false;
    this.enabled = (await this.store.countTokens()) > 0;
    this.enabledUntil = Date.now() + CACHE_MS;
    return this.enabled;
  }

  /** The caller's token (undefined while auth is off). Throws UNAUTHORIZED (no or unknown token) or FORBIDDEN (role too low). */
  async check(request: FastifyRequest, needed: ApiRole): Promise<ApiToken | undefined> {
    if (!(await this.isEnabled())) return undefined;
    const presented = bearerOf(request);
    if (!presented) throw new SluiceError('UNAUTHORIZED', 'this server requires a token: Authorization: Bearer <token>');
    const token = await this.lookup(presented);
    if (!token) throw new SluiceError('UNAUTHORIZED', 'the token is unknown');
    if (token.revokedAt !== null) {
      throw new SluiceError('TOKEN_REVOKED', `token ${token.id} was revoked at ${new Date(token.revokedAt).toISOString()}; create a new one with sluice token create`);
    }
    if (token.expiresAt !== null && token.expiresAt <= Date.now()) {
      throw new SluiceError('TOKEN_EXPIRED', `the token expired at ${new Date(token.expiresAt).toISOString()}; create a new one with sluice token create`);
    }
    if (RANK[token.role] < RANK[needed]) throw new SluiceError('FORBIDDEN', `this needs the ${needed} role; the token has ${token.role}`);
    return token;
  }

  private async lookup(presented: string): Promise<ApiToken | undefined> {
    const hash = hashToken(presented);
    const hit = this.cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.token;
    const token = await this.store.findToken(hash);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { token, until: Date.now() + TOKEN_CACHE_MS });
    return token;
  }

  /** Drops cached lookups of the token with this id (revoked by this process: refused from the next request). */
  forget(id: number): void {
    for (const [hash, hit] of this.cache) if (hit.token?.id === id) this.cache.delete(hash);
  }
}

const STREAM_ROUTES = new Set(['/api/stream', '/api/ws']);

/**
 * The token of `Authorization: Bearer X`, or on the live-stream routes of `?token=X` (EventSource and browser
 * WebSocket clients cannot set headers).
 */
function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1] : undefined;
  }
  if (!STREAM_ROUTES.has(request.routeOptions.url ?? '')) return undefined;
  const q = (request.query as Record<string, unknown> | undefined)?.['token'];
  return typeof q === 'string' && q.length > 0 ? q : undefined;
}

/** The role a route needs: its `config.role`, else viewer for reads and operator for writes. */
export function roleFor(method: string, configured: ApiRole | undefined): ApiRole {
  if (configured) return configured;
  return method === 'GET' || method === 'HEAD' ? 'viewer' : 'operator';
}

/** Whether `host` is a loopback address (the only place an unauthenticated server may listen). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host === '::ffff:127.0.0.1';
}
