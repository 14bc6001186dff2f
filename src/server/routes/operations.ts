import type { FastifyInstance } from 'fastify';
import type { ApiRole } from '../../store/store.js';
import { createApiToken } from '../auth.js';
import type { ServerContext } from '../create-server.js';
import { toHttpError } from '../http-errors.js';
import { createTokenBody } from '../schemas.js';

/**
 * GET /healthz (the process answers), /readyz (the store answers), /metrics (Prometheus text): no auth.
 * POST /api/tokens (admin): creates an API token, shown once.
 */
export function registerOperationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['operations'], summary: 'Readiness: the store is reachable' } }, async (_request, reply) => {
    try {
      await ctx.engine.store.listRuns({ limit: 1 });
      return { status: 'ready', store: ctx.engine.store.url };
    } catch (err) {
      const { body } = toHttpError(err);
      return reply.status(503).send({ error: { code: 'STORE_ERROR', message: body.error.message } });
    }
  });

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_request, reply) => {
    await ctx.live.poll();
    return reply.type('text/plain; version=0.0.4').send(await ctx.metrics.render(ctx.engine.store));
  });

  app.post<{ Body: { role: ApiRole; name?: string } }>(
    '/api/tokens',
    { config: { role: 'admin' }, schema: { tags: ['auth'], summary: 'Create an API token; the answer is the only time it is shown', body: createTokenBody } },
    async (request, reply) => {
      const { token, record } = await createApiToken(ctx.engine.store, request.body.role, request.body.name ?? null, ctx.engine.clock.now());
      return reply.status(201).send({ token, id: record.id, role: record.role, name: record.name, created_at: record.createdAt });
    },
  );
}
