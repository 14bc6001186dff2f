import type { FastifyInstance } from 'fastify';
import type { ServerOptions } from './create-server.js';

/**
 * Creates the HTTP server (see `sluice/server`), loading Fastify, its plugins and the routes on the first call
 * rather than when `sluice` is imported: most programs that use the engine never serve.
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const server = await import('./create-server.js');
  return server.createServer(options);
}
