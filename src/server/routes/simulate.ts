import { SluiceError } from '../../core/errors.js';
import type { FastifyInstance } from 'fastify';
import { attributeStats } from '../../attributes/stats.js';
import { simulatePipeline, type SimulatedRun } from '../../engine/simulate.js';
import type { ServerContext } from '../create-server.js';
import { pipelineParams, simulateBody, statsQuery } from '../schemas.js';
import { parseTime } from './runs.js';
import { statsView, usageView } from '../contract-views.js';
import { apiResponses, ok, simulateAnswer, statsAnswer } from '../response-schemas.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** POST /api/pipelines/:name/simulate (persists nothing) and GET /api/pipelines/:name/stats. */
export function registerSimulateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;
  const tags = ['pipelines'];

  app.post<{ Params: { name: string }; Body: { inputs?: unknown[]; docs?: unknown[]; verbose: boolean } }>(
    '/api/pipelines/:name/simulate',
    { config: { role: 'admin' }, schema: { tags, operationId: 'simulatePipeline', summary: 'Execute the pipeline inline on sample inputs; nothing is stored', params: pipelineParams, body: simulateBody, response: apiResponses({ 200: ok(simulateAnswer, 'Each sample run: status, outputs, steps') }, 400, 404, 413, 415) } },
    async (request) => {
      const stored = await engine.requirePipeline(request.params.name);
      const inputs = [...(request.body.inputs ?? []), ...(request.body.docs ?? [])];
      if (inputs.length === 0) throw new SluiceError('REQUEST_INVALID', 'give at least one sample in inputs (or docs)');
      const baseDir = stored.sourceFile ? stored.sourceFile.replace(/\/[^/]*$/, '') || '/' : process.cwd();
      const runs = await simulatePipeline(stored.definition, inputs, {
        steps: engine.steps,
        secrets: { ...engine.secrets },
        baseDir,
        version: stored.version,
        verbose: request.body.verbose,
        now: () => engine.clock.now(),
        artifacts: engine.artifacts,
      });
      return { pipeline: stored.name, version: stored.version, runs: runs.map(simulatedRunView) };
    },
  );

  app.get<{ Params: { name: string }; Querystring: { since?: number | string; buckets?: number } }>(
    '/api/pipelines/:name/stats',
    { schema: { tags, operationId: 'getPipelineStats', summary: 'Counts by status, p50/p95/p99 durations, tokens and cost per pipeline and step', params: pipelineParams, querystring: statsQuery, response: apiResponses({ 200: ok(statsAnswer, 'The stats of the window') }, 400, 404, 501) } },
    async (request) => {
      const store = engine.store;
      const stored = await engine.requirePipeline(request.params.name);
      const q = request.query.since;
      const since = q === undefined ? engine.clock.now() - DAY_MS : parseTime(typeof q === 'string' && /^\d+$/.test(q) ? Number(q) : q, 'since');
      const { buckets } = request.query;
      const now = engine.clock.now();
      if (buckets !== undefined && since >= now) throw new SluiceError('REQUEST_INVALID', `since must be in the past to split it into buckets, got ${new Date(since).toISOString()}`);
      const stats = await store.pipelineStats(request.params.name, since, buckets === undefined ? undefined : { buckets, until: now + 1 });
      const attributes = await attributeStats(engine, stored);
      return attributes ? { ...statsView(stats), attributes } : statsView(stats);
    },
  );
}

/** A simulated run with each step's usage in snake_case. */
function simulatedRunView(run: SimulatedRun): Record<string, unknown> {
  const steps = Object.fromEntries(
    Object.entries(run.steps).map(([name, step]) => {
      const { usage, ...rest } = step;
      return [name, usage === undefined ? rest : { ...rest, usage: usageView(usage) }];
    }),
  );
  return { ...run, steps };
}
