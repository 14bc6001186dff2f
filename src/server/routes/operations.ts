import type { FastifyInstance } from 'fastify';
import type { ApiRole, ApiToken } from '../../store/store.js';
import { maskStoreUrl } from '../../store/store-url.js';
import { createApiToken } from '../auth.js';
import type { ServerContext } from '../create-server.js';
import { SluiceError } from '../../core/errors.js';
import { toHttpError } from '../http-errors.js';
import { apiResponses, healthAnswer, probeResponses, ok, readyAnswer, textAnswer, tokenCreated, tokenList, tokenSchema } from '../response-schemas.js';
import { createTokenBody } from '../schemas.js';

/**
 * GET /healthz (the process answers), /readyz (the store answers), /metrics (Prometheus text): no auth.
 * POST /api/tokens (admin): creates an API token, shown once. GET /api/tokens, DELETE /api/tokens/:id (admin): lists
 * tokens (never their secret or hash), revokes one.
 */
export function registerOperationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', { schema: { tags: ['operations'], operationId: 'healthz', summary: 'Liveness', security: [], response: probeResponses({ 200: ok(healthAnswer, 'The process answers') }, '4xx', '5xx') } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['operations'], operationId: 'readyz', summary: 'Readiness: the store is reachable', security: [], response: probeResponses({ 200: ok(readyAnswer, 'The store answers') }, '4xx', 503, '5xx') } }, async (_request, reply) => {
    const store = ctx.engine.store;
    try {
      // One try, no retries: a probe must answer while the store is down, not wait for it to come back.
      await store.ping();
      return { status: 'ready', store: maskStoreUrl(store.url) };
    } catch (err) {
      const { error } = toHttpError(err).body;
      return reply.status(503).send({ error: { code: error.code.startsWith('STORE_') ? error.code : 'STORE_ERROR', message: error.message } });
    }
  });

  app.get('/metrics', { schema: { tags: ['operations'], operationId: 'metrics', summary: 'Prometheus metrics', security: [], response: probeResponses({ 200: textAnswer('Prometheus text exposition format') }, '4xx', '5xx') } }, async (_request, reply) => {
    await ctx.live.poll();
    return reply.type('text/plain; version=0.0.4').send(await ctx.metrics.render(ctx.engine.store));
  });

  app.post<{ Body: { role: ApiRole; name?: string } }>(
    '/api/tokens',
    { config: { role: 'admin' }, schema: { tags: ['auth'], operationId: 'createToken', summary: 'Create an API token; the answer is the only time it is shown', body: createTokenBody, response: apiResponses({ 201: ok(tokenCreated, 'The token, shown this once') }, 400, 413, 415, 501) } },
    async (request, reply) => {
      const { token, record } = await createApiToken(ctx.engine.store, request.body.role, request.body.name ?? null, ctx.engine.clock.now());
      return reply.status(201).send({ token, id: record.id, role: record.role, name: record.name, created_at: record.createdAt });
    },
  );

  app.get('/api/tokens', { config: { role: 'admin' }, schema: { tags: ['auth'], operationId: 'listTokens', summary: 'List API tokens (never their secret)', response: apiResponses({ 200: ok(tokenList, 'Every token') }, 501) } }, async () => {
    const store = ctx.engine.store;
    return { tokens: (await store.listTokens()).map(tokenView) };
  });

  app.delete<{ Params: { id: string } }>(
    '/api/tokens/:id',
    { config: { role: 'admin' }, schema: { tags: ['auth'], operationId: 'revokeToken', summary: 'Revoke an API token: it gets 401 TOKEN_REVOKED from then on', params: tokenParams, response: apiResponses({ 200: ok(tokenSchema, 'The revoked token') }, 400, 404, 501) } },
    async (request) => {
      const store = ctx.engine.store;
      const id = Number(request.params.id);
      const token = await store.revokeToken(id, ctx.engine.clock.now());
      if (!token) throw new SluiceError('TOKEN_NOT_FOUND', `no token with id ${request.params.id}`);
      ctx.auth.forget(id);
      return tokenView(token);
    },
  );
}

const tokenParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'The id `sluice token list` shows' } },
} as const;

/** A token as the API shows it: never its secret nor its hash. */
function tokenView(t: ApiToken) {
  return { id: t.id, name: t.name, role: t.role, created_at: t.createdAt, expires_at: t.expiresAt, revoked_at: t.revokedAt };
}
