import type { FastifyInstance } from 'fastify';
import { attributeWarnings } from '../../attributes/warnings.js';
import { ValidationError, type ValidationIssue } from '../../core/errors.js';
import { buildGraph, renderGraph, writtenSteps, type GraphFormat } from '../../core/graph.js';
import { isRecord, type Locate } from '../../core/key-path.js';
import { parsePipelineText } from '../../core/load-pipeline.js';
import type { Pipeline } from '../../core/model.js';
import { normalizePipeline } from '../../core/validate.js';
import type { Engine } from '../../engine/engine.js';
import type { ServerContext } from '../create-server.js';
import { isSluiceError } from '../http-errors.js';
import { graphQuery, listPipelinesQuery, pipelineBodyDoc, pipelineParams } from '../schemas.js';
import { pipelineSummary as summaryOf } from '../pipeline-summaries.js';
import { definitionView } from '../contract-views.js';
import { apiResponses, graphAnswer, ok, pipelineDetail, pipelineList, pipelineRegistered, pipelineSummary, pipelineVersions, validateAnswer } from '../response-schemas.js';
import { pipelineView } from '../views.js';
import { registerSimulateRoutes } from './simulate.js';

type NameParams = { name: string };

/**
 * The registry: list, register (PUT, JSON or YAML), read, disable (DELETE), versions, validate, graph.
 *
 * DELETE does not erase anything: it stores a new version with `disabled: true`, so runs and versions stay
 * readable and new runs are refused with PIPELINE_DISABLED (409). A later PUT with `disabled: false` (the
 * default) re-enables it.
 */
export function registerPipelineRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;
  const tags = ['pipelines'];

  app.get<{ Querystring: { summary: boolean; name?: string } }>(
    '/api/pipelines',
    {
      schema: {
        tags,
        operationId: 'listPipelines',
        summary: 'Latest version of every pipeline; with summary=true also its newest run, eval counts and mean confidence',
        querystring: listPipelinesQuery,
        response: apiResponses({ 200: ok(pipelineList, 'Every pipeline, latest version') }, 400),
      },
    },
    async (request) => {
      const { summary, name } = request.query;
      const all = name === undefined ? await engine.store.listPipelines() : [await engine.store.getPipeline(name)].filter((p) => p !== undefined);
      const pipelines = all.map((p) => pipelineView(p));
      if (!summary) return { pipelines };
      const extras = await Promise.all(all.map((p) => summaryOf(engine, p)));
      return { pipelines: pipelines.map((p, i) => ({ ...p, ...extras[i] })) };
    },
  );

  app.get<{ Params: NameParams }>('/api/pipelines/:name', { schema: { tags, operationId: 'getPipeline', summary: 'Latest version of a pipeline with its definition and source', params: pipelineParams, response: apiResponses({ 200: ok(pipelineDetail, 'The pipeline') }, 400, 404) } }, async (request) =>
    pipelineView(await engine.requirePipeline(request.params.name), true),
  );

  app.get<{ Params: NameParams }>('/api/pipelines/:name/versions', { schema: { tags, operationId: 'listPipelineVersions', summary: 'Every version of a pipeline, newest first', params: pipelineParams, response: apiResponses({ 200: ok(pipelineVersions, 'The versions') }, 400, 404) } }, async (request) => {
    await engine.requirePipeline(request.params.name);
    return { versions: (await engine.store.listPipelineVersions(request.params.name)).map((p) => pipelineView(p)) };
  });

  app.delete<{ Params: NameParams }>(
    '/api/pipelines/:name',
    { config: { role: 'admin' }, schema: { tags, operationId: 'disablePipeline', summary: 'Disable a pipeline (kept with its versions and runs)', params: pipelineParams, response: apiResponses({ 200: ok(pipelineSummary, 'The disabled pipeline') }, 400, 404) } },
    async (request) => {
      const current = await engine.requirePipeline(request.params.name);
      if (current.definition.disabled) return pipelineView(current);
      return pipelineView(await engine.registerPipeline({ ...current.definition, disabled: true }));
    },
  );

  app.get<{ Params: NameParams; Querystring: { format: GraphFormat | 'json' } }>(
    '/api/pipelines/:name/graph',
    {
      schema: {
        tags,
        operationId: 'getPipelineGraph',
        summary: 'The DAG as JSON (nodes, edges, order) or as text (ascii, mermaid, dot)',
        params: pipelineParams,
        querystring: graphQuery,
        response: apiResponses({ 200: { description: 'The graph', content: { 'application/json': { schema: graphAnswer }, 'text/plain': { schema: { type: 'string' } } } } }, 400, 404),
      },
    },
    async (request, reply) => {
      const p = await engine.requirePipeline(request.params.name);
      const written = writtenSteps(p.definition);
      if (request.query.format !== 'json') return reply.type('text/plain; charset=utf-8').send(renderGraph(written, request.query.format));
      return graphJson(written);
    },
  );

  app.register(async (scoped) => {
    // Definitions are parsed here, as text, so that issues carry the line and column of what the client sent.
    scoped.removeContentTypeParser('application/json');
    scoped.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    const accept = { validatorCompiler: () => () => true } as const;

    scoped.put<{ Params: NameParams; Body: unknown }>(
      '/api/pipelines/:name',
      { ...accept, config: { role: 'admin' }, schema: { tags, operationId: 'putPipeline', summary: 'Register a pipeline (new version only when it changed)', params: pipelineParams, body: pipelineBodyDoc, response: apiResponses({ 200: ok(pipelineRegistered, 'Unchanged: the current version'), 201: ok(pipelineRegistered, 'A new version was stored') }, 400, 413, 415) } },
      async (request, reply) => {
        const name = request.params.name;
        const pipeline = definitionOf(engine, name, request.body);
        const before = await engine.store.getPipeline(name);
        const stored = await engine.registerPipeline(pipeline, { text: String(request.body) });
        const created = before === undefined || before.version !== stored.version;
        const warnings = await attributeWarnings(engine.store, stored.definition);
        return reply.status(created ? 201 : 200).send({ ...pipelineView(stored, true), created, warnings });
      },
    );

    scoped.post<{ Params: NameParams; Body: unknown }>(
      '/api/pipelines/:name/validate',
      { ...accept, config: { role: 'viewer' }, schema: { tags, operationId: 'validatePipeline', summary: 'Validate a definition without storing it', params: pipelineParams, body: pipelineBodyDoc, response: apiResponses({ 200: ok(validateAnswer, 'Whether it is valid, every issue with its line, and the normalized definition') }, 400, 413, 415) } },
      async (request) => {
        try {
          return { valid: true, issues: [], definition: definitionView(definitionOf(engine, request.params.name, request.body)) };
        } catch (err) {
          if (isSluiceError(err) && err.code === 'VALIDATION_FAILED') return { valid: false, issues: err.details };
          throw err;
        }
      },
    );
  });

  registerSimulateRoutes(app, ctx);
}

/** Parses and normalizes a posted definition; `name` defaults to the URL's and must match it. */
function definitionOf(engine: Engine, name: string, body: unknown): Pipeline {
  const file = `pipeline ${name}`;
  if (typeof body !== 'string' || body.trim() === '') throw new ValidationError([{ file, message: 'expected a pipeline definition as JSON or YAML in the body' }]);
  const { spec, locate } = parsePipelineText(body, file);
  if (isRecord(spec)) {
    if (spec['name'] === undefined) spec['name'] = name;
    else if (spec['name'] !== name) throw new ValidationError([nameIssue(file, name, spec['name'], locate)]);
  }
  return normalizePipeline(spec, { stepTypes: engine.steps, file, locate });
}

function nameIssue(file: string, name: string, got: unknown, locate: Locate): ValidationIssue {
  return { file, path: 'name', ...locate(['name'], 'value'), message: `must match the name in the URL (${name}), got ${JSON.stringify(got)}` };
}

function graphJson(p: Pipeline): Record<string, unknown> {
  const graph = buildGraph(p);
  return {
    name: p.name,
    order: graph.order,
    nodes: p.steps.map((s) => ({ name: s.name, uses: s.uses, needs: s.needs, if: s.if, disabled: s.disabled })),
    edges: p.steps.flatMap((s) => s.needs.map((from) => ({ from, to: s.name }))),
  };
}
