/**
 * The task service embedded in a program: `sluice serve`'s HTTP API running the typed pipeline of pipelines.ts,
 * plus a small page (public/index.html) that starts a task over REST with an idempotency key and follows its run
 * over SSE. Without the page, `npx sluice serve --load examples/task-service/pipelines.ts` serves the same API.
 *
 *   npx tsx examples/task-service/server.ts        # then open http://127.0.0.1:8080/
 *
 * Store: $SLUICE_STORE, default sqlite:.sluice/task-service.db (relative to the working directory).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createEngine, createServer, openStore, type Engine } from 'sluice';
import { taskService } from './pipelines.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface TaskService {
  app: FastifyInstance;
  engine: Engine;
  /** http://host:port */
  address: string;
  close(): Promise<void>;
}

export async function startTaskService(options: { store?: string; port?: number; host?: string } = {}): Promise<TaskService> {
  const store = await openStore(options.store ?? process.env['SLUICE_STORE'] ?? 'sqlite:.sluice/task-service.db');
  const engine = createEngine({ store });
  await engine.registerPipeline(taskService);
  engine.startWorker({ concurrency: 8 });
  const app = await createServer({ engine });
  const page = readFileSync(join(here, 'public', 'index.html'), 'utf8');
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  const address = await app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
  return {
    app,
    engine,
    address,
    async close() {
      await app.close();
      await engine.close();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const service = await startTaskService({ port: Number(process.env['PORT'] ?? 8080) });
  process.stderr.write(`task service on ${service.address}/ (API docs at ${service.address}/docs)\n`);
  const stop = () => void service.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
