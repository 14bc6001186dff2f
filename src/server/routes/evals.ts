import type { FastifyInstance } from 'fastify';
import { evalFromValue, patchEval, setEvals } from '../../evals/evals.js';
import { evalCaseFromJson, evalCaseView, evalReportView } from '../../evals/eval-views.js';
import { loadEvalReport, runEvals } from '../../evals/run-evals.js';
import type { EvalPatch } from '../../store/evals.js';
import type { ServerContext } from '../create-server.js';
import { apiResponses, ok, ref } from '../response-schemas.js';
import { pipelineParams } from '../schemas.js';

type NameParams = { name: string };
type EvalParams = { name: string; id: number };

const evalParams = {
  type: 'object',
  required: ['name', 'id'],
  properties: { name: pipelineParams.properties.name, id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
} as const;

const caseBody = {
  type: 'object',
  additionalProperties: false,
  required: ['desired_output'],
  properties: {
    id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'An existing case to keep (with its last result); leave out to add a case.' },
    record_id: { type: ['string', 'null'], minLength: 1, description: "A record of the pipeline's dataset (exactly one of record_id and input)." },
    input: { type: ['object', 'null'], description: "The pipeline input (an attribute pipeline's source fields)." },
    desired_output: { description: 'Any JSON value.' },
    comparator: { type: ['string', 'null'], description: '`exact` (default), `number:<tolerance>`, `subset` or `regex`.' },
    notes: { type: ['string', 'null'] },
  },
} as const;

const putEvalsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['evals'],
  properties: { evals: { type: 'array', items: caseBody, description: 'The whole set, in order; cases left out are deleted.' } },
} as const;

const patchEvalBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    desired_output: { description: 'Any JSON value.' },
    comparator: { type: ['string', 'null'], description: '`exact`, `number:<tolerance>`, `subset` or `regex`; null = `exact`.' },
    notes: { type: ['string', 'null'] },
  },
} as const;

const fromOverrideBody = {
  type: 'object',
  additionalProperties: false,
  required: ['record_id'],
  properties: {
    record_id: { type: 'string', minLength: 1 },
    dataset: { type: 'string', minLength: 1, description: "Default: the pipeline's dataset (the only one it reads)." },
    field: { type: 'string', minLength: 1, description: "Default: the pipeline's target." },
    notes: { type: 'string' },
  },
} as const;

const evalCaseResponse = {
  type: 'object',
  additionalProperties: true,
  required: ['id', 'record_id', 'input', 'desired_output', 'comparator', 'notes', 'actual_output', 'justification', 'confidence', 'passed', 'error', 'last_ran_at', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'integer' },
    record_id: { type: ['string', 'null'] },
    input: { type: ['object', 'null'], additionalProperties: true },
    desired_output: {},
    comparator: { type: 'string' },
    notes: { type: ['string', 'null'] },
    actual_output: {},
    justification: { type: ['string', 'null'] },
    confidence: { type: ['number', 'null'] },
    passed: { type: ['boolean', 'null'], description: 'null until the case ran.' },
    error: { ...ref('StoredError'), description: 'Why the pipeline failed on the case (counts as failed).' },
    last_ran_at: { type: ['integer', 'null'] },
    created_at: { type: 'integer' },
    updated_at: { type: 'integer' },
  },
} as const;

const evalReportResponse = {
  type: 'object',
  required: ['pipeline', 'evals', 'summary'],
  properties: {
    pipeline: { type: 'string' },
    evals: { type: 'array', items: evalCaseResponse },
    summary: {
      type: 'object',
      required: ['total', 'passed', 'failed', 'not_run'],
      properties: { total: { type: 'integer' }, passed: { type: 'integer' }, failed: { type: 'integer' }, not_run: { type: 'integer' } },
    },
  },
} as const;

const READ_ERRORS = [400, 404];
const WRITE_ERRORS = [400, 404, 409, 413, 415];
const report = ok(evalReportResponse, 'The cases with their last results, and counts');
const oneCase = ok(evalCaseResponse, 'The case with its last result');

/**
 * Eval cases of a pipeline: read (viewer), replace, edit, run, and add a record's current value as a case
 * (operator). Editing a desired output or comparator recomputes `passed` from the stored actual output at once.
 */
export function registerEvalRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;
  const tags = ['evals'];

  app.get<{ Params: NameParams }>(
    '/api/pipelines/:name/evals',
    { schema: { tags, operationId: 'listEvals', summary: 'Eval cases with their last results, and counts', params: pipelineParams, response: apiResponses({ 200: report }, ...READ_ERRORS) } },
    async (request) => {
      const pipeline = await engine.requirePipeline(request.params.name);
      return evalReportView(await loadEvalReport(engine, pipeline.name));
    },
  );

  app.put<{ Params: NameParams; Body: { evals: unknown[] } }>(
    '/api/pipelines/:name/evals',
    {
      config: { role: 'operator' },
      schema: { tags, operationId: 'putEvals', summary: 'Replace the eval cases (all or nothing); kept ids keep their last result', params: pipelineParams, body: putEvalsBody, response: apiResponses({ 200: report }, ...WRITE_ERRORS) },
    },
    async (request) => {
      const cases = request.body.evals.map((c, i) => evalCaseFromJson(c, `eval case ${i}`));
      await setEvals(engine, request.params.name, cases);
      return evalReportView(await loadEvalReport(engine, request.params.name));
    },
  );

  app.patch<{ Params: EvalParams; Body: { desired_output?: unknown; comparator?: string | null; notes?: string | null } }>(
    '/api/pipelines/:name/evals/:id',
    {
      config: { role: 'operator' },
      schema: { tags, operationId: 'patchEval', summary: 'Edit one case; passed is recomputed from its stored output', params: evalParams, body: patchEvalBody, response: apiResponses({ 200: oneCase }, ...WRITE_ERRORS) },
    },
    async (request) => {
      const patch: EvalPatch = {};
      if ('desired_output' in request.body) patch.desiredOutput = request.body.desired_output;
      if ('comparator' in request.body) patch.comparator = request.body.comparator;
      if ('notes' in request.body) patch.notes = request.body.notes;
      return evalCaseView(await patchEval(engine, request.params.name, request.params.id, patch));
    },
  );

  app.post<{ Params: NameParams }>(
    '/api/pipelines/:name/evals/run',
    {
      config: { role: 'operator' },
      schema: { tags, operationId: 'runEvals', summary: 'Run every case now (in memory, no run recorded) and store the results', params: pipelineParams, response: apiResponses({ 200: report }, ...WRITE_ERRORS) },
    },
    async (request) => evalReportView(await runEvals(engine, request.params.name)),
  );

  app.post<{ Params: NameParams; Body: { record_id: string; dataset?: string; field?: string; notes?: string } }>(
    '/api/pipelines/:name/evals/from-override',
    {
      config: { role: 'operator' },
      schema: {
        tags,
        operationId: 'evalFromOverride',
        summary: "Make a record's current value of a field (an override) the desired output of that record's case",
        description: 'Creates the case, or updates the one the pipeline has for the record. VALUE_NOT_FOUND (404) when the record has no value for the field.',
        params: pipelineParams,
        body: fromOverrideBody,
        response: apiResponses({ 200: oneCase }, ...WRITE_ERRORS),
      },
    },
    async (request) => {
      const { record_id: recordId, dataset, field, notes } = request.body;
      return evalCaseView(await evalFromValue(engine, request.params.name, { recordId, dataset, field, notes }));
    },
  );
}
