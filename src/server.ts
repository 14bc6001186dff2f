/**
 * `sluice/server`: the HTTP API and dashboard (Fastify), for programs that serve. Importing `sluice` alone does
 * not load it; `createServer` from `sluice` loads this module on its first call.
 */
export { createServer, DEFAULT_BODY_LIMIT, type ServerOptions } from './server/create-server.js';
export { createApiToken } from './server/auth.js';
