import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../create-server.js';
import { apiResponses, meAnswer, ok } from '../response-schemas.js';

/**
 * GET /api/me: who the caller is. With auth on, the role and name of the token; with auth off (loopback, no
 * tokens) every caller is admin. The dashboard shows only the controls the role may use.
 */
export function registerMeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/me', { schema: { tags: ['auth'], operationId: 'getMe', summary: 'The role and name of the caller', response: apiResponses({ 200: ok(meAnswer, 'Who the caller is') }) } }, async (request) => {
    const token = request.apiToken;
    if (!token) return { role: 'admin', name: null, auth: await ctx.auth.isEnabled() };
    return { role: token.role, name: token.name ?? `token ${token.id}`, auth: true };
  });
}
