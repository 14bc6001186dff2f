import swagger from '@fastify/swagger';
import { withRedactedRequests } from './log-redaction.js';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Engine } from '../engine/engine.js';
import { EvalScheduler, type EvalSchedulerOptions } from '../evals/eval-scheduler.js';
import type { ApiRole, ApiToken } from '../store/store.js';
import { Authenticator, roleFor, type AuthMode } from './auth.js';
import { SluiceError } from '../core/errors.js';
import { assertBodyShape, sendError } from './http-errors.js';
import { LiveEvents } from './live-events.js';
import type { Metrics, MetricsOptions } from './metrics.js';
import { RunBatcher } from './run-batcher.js';
import { SHARED_SCHEMAS } from './response-schemas.js';
import { registerDatasetRoutes } from './routes/datasets.js';
import { registerEvalRoutes } from './routes/evals.js';
import { registerMeRoutes } from './routes/me.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerPipelineRoutes } from './routes/pipelines.js';
import { registerRunRoutes } from './routes/runs.js';
import { registerStreamRoutes } from './routes/stream.js';
import { registerStaticWeb } from './static-web.js';

export interface ServerOptions {
  engine: Engine;
  /** Default: `auto` (auth on once the store holds a token). See {@link AuthMode}. */
  auth?: AuthMode;
  /** Largest accepted request body, bytes. Default: 1 MiB. */
  bodyLimit?: number;
  /** How often live streams poll the store for events of other processes. Default: 250 ms. */
  pollMs?: number;
  /** SSE heartbeat comment interval. Default: 15 s. */
  heartbeatMs?: number;
  /** Fastify logger option (pino). Default: off. `sluice serve` turns on JSON logs. */
  logger?: FastifyServerOptions['logger'];
  /** A pino logger the server logs to instead of `logger` (`sluice serve` shares its engine's). Default: none. */
  loggerInstance?: FastifyBaseLogger;
  /**
   * Re-run a pipeline's evals after each of its runs that this process sees succeed, and every pipeline's evals
   * on `cron` (`sluice serve` passes `--evals-cron`, default 03:00 nightly). Default: off.
   */
  evals?: EvalSchedulerOptions;
  /** Folder of the built dashboard served at `/`; false serves none. Default: the package's `dist/web`. */
  webRoot?: string | false;
  /** Bounds of the metrics' label sets. Default: 200 pipelines, 100 steps per pipeline (more count as `other`). */
  metrics?: MetricsOptions;
}

/** What route modules share. */
export interface ServerContext {
  engine: Engine;
  live: LiveEvents;
  metrics: Metrics;
  auth: Authenticator;
  /** Run creations of concurrent requests, committed together. */
  batcher: RunBatcher;
  heartbeatMs: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least role a route needs. Default: viewer for GET, operator otherwise. */
    role?: ApiRole;
  }
  interface FastifyRequest {
    /** The caller's token, when auth is on. */
    apiToken: ApiToken | null;
  }
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

// Bodies are validated strictly (no type coercion, unknown fields rejected); query strings and params are
// text, so their numbers and booleans are coerced.
const bodyAjv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: false, removeAdditional: false, strict: false });
const textAjv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: 'array', removeAdditional: false, strict: false });

/**
 * The HTTP API of PRODUCT.md as a Fastify instance over an engine. The caller owns the engine (and its worker)
 * and calls `listen`; `close()` stops the live-event poller. Errors are `{error: {code, message}}`.
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // `__proto__` keys are parsed as plain data and refused, with their path, by assertBodyShape.
  const logging = options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: withRedactedRequests(options.logger ?? false) };
  // Probes (/healthz, /readyz, /metrics) are answered every few seconds: they are logged at debug, below.
  const app = Fastify({ ...logging, logController: new LogController({ disableRequestLogging: (req: { url?: string }) => isProbe(req.url) }), bodyLimit, forceCloseConnections: true, onProtoPoisoning: 'ignore', onConstructorPoisoning: 'ignore' });
  const live = new LiveEvents(options.engine, { pollMs: options.pollMs ?? 250, onError: (err) => app.log.warn({ err }, 'event poll failed') });
  const ctx: ServerContext = {
    engine: options.engine,
    live,
    metrics: new (await loadMetrics())(options.engine.store, () => options.engine.clock.now(), options.metrics),
    auth: new Authenticator(options.engine.store, options.auth ?? 'auto'),
    batcher: new RunBatcher(options.engine),
    heartbeatMs: options.heartbeatMs ?? 15_000,
  };
  live.onEvent((e) => ctx.metrics.observe(e));
  const evals = options.evals && new EvalScheduler(options.engine, { onError: (err, pipeline) => app.log.error({ err, pipeline }, 'eval pass failed'), ...options.evals });

  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));
  // Answers are JSON.stringify'd as they are: the response schemas document the API (and a test checks real
  // answers against them) but never drop or coerce a field.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((request, reply) => sendError(new SluiceError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`), request, reply));
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.decorateRequest('apiToken', null);
  app.addHook('onRequest', async (request) => {
    // Decided by the matched route, not the raw URL: `/%61pi/runs` routes to `/api/runs` too.
    if (!request.routeOptions.url?.startsWith('/api/')) return;
    // While the store is known to be down, one quick check answers 503 STORE_UNAVAILABLE now instead of waiting.
    const store = options.engine.store;
    if (store.isUnreachable()) await store.ping();
    request.apiToken = (await ctx.auth.check(request, roleFor(request.method, request.routeOptions.config.role))) ?? null;
  });
  // Before schema checks and handlers, which walk bodies recursively: a too-deep body gets a 400 naming where.
  app.addHook('preValidation', async (request) => assertBodyShape(request.body));
  app.addHook('onResponse', async (request, reply) => ctx.metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000));
  app.addHook('onResponse', async (request) => closeRefusedUpgrade(request.raw));
  app.addHook('onResponse', async (request, reply) => {
    if (isProbe(request.url)) request.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, 'probe answered');
  });

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    // Shared schemas keep their `$id` as their name under components.schemas.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Sluice API', version: '0.1.0', description: 'Durable pipelines: registry, runs, live events, operations.', license: { name: 'MIT', identifier: 'MIT' } },
      servers: [{ url: '/', description: 'This server' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerOperationRoutes(app, ctx);
  registerPipelineRoutes(app, ctx);
  registerRunRoutes(app, ctx);
  registerStreamRoutes(app, ctx);
  registerDatasetRoutes(app, ctx);
  registerEvalRoutes(app, ctx);
  registerMeRoutes(app, ctx);
  if (options.webRoot !== false) registerStaticWeb(app, options.webRoot);

  await live.start();
  app.addHook('onClose', async () => live.stop());
  if (evals) {
    evals.start();
    app.addHook('onClose', async () => evals.stop());
  }
  return app;
}

/** The metrics module, loaded with the first server: prom-client costs a program that only uses the library nothing. */
async function loadMetrics(): Promise<typeof Metrics> {
  return (await import('./metrics.js')).Metrics;
}

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/** Whether a request URL is one of the probes monitoring systems poll. */
function isProbe(url: string | undefined): boolean {
  return PROBES.has((url ?? '').split('?')[0]!);
}

/**
 * Closes the socket of an upgrade request that got a plain HTTP answer (401, 403, 404...) instead of a WebSocket.
 * Node hands an upgrade request's socket over to the `upgrade` listener, so the HTTP server no longer tracks it
 * and `forceCloseConnections` cannot close it: left open by a client that does not hang up, it would keep
 * `close()` (and so `sluice serve`'s shutdown) waiting forever. An accepted upgrade never gets here: its reply is
 * hijacked and onResponse does not run.
 */
function closeRefusedUpgrade(raw: IncomingMessage): void {
  if (raw.headers.upgrade === undefined || !/\bupgrade\b/i.test(raw.headers.connection ?? '')) return;
  // After the answer is flushed, so the client still reads why it was refused.
  raw.socket.destroySoon();
}
