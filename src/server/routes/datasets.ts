import type { FastifyInstance } from 'fastify';
import { attributeTriggersOf } from '../../attributes/extension.js';
import { SluiceError } from '../../core/errors.js';
import { putDataset, requireDataset, writeRecords } from '../../datasets/datasets.js';
import { recordsFromArray, recordsFromJsonl } from '../../datasets/jsonl.js';
import { isJsonObject } from '../../core/record-checks.js';
import type { ServerContext } from '../create-server.js';
import { approveBody, bulkQuery, datasetBody, datasetParams, datasetRunBody, listRecordsQuery, overrideBody, recordBody, recordParams, valueParams } from '../schemas.js';
import { apiResponses, attributeValueSchema, datasetList, datasetRunStarted, datasetSchema, ok, recordDeleted, recordPage, recordSchema, recordsWritten } from '../response-schemas.js';
import { attributeValueView, datasetView, recordView } from '../views.js';
import { datasetPipelineOrder, runDatasetPipelines } from '../../attributes/dataset-runs.js';

type NameParams = { name: string };
type RecordParams = { name: string; id: string };

/** Content types of a JSONL bulk body, read as text. */
const JSONL_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines'];

/**
 * Datasets and records. Creating a dataset is admin work (it is configuration); writing records is operator
 * work. Every record write passes through the dataset's ingest pipeline first (INGEST_FAILED, 422, naming the
 * step, when it fails) and stores nothing unless every record of the request is valid.
 */
export function registerDatasetRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;
  const tags = ['datasets'];
  app.addContentTypeParser(JSONL_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.get('/api/datasets', { schema: { tags, operationId: 'listDatasets', summary: 'Every dataset', response: apiResponses({ 200: ok(datasetList, 'Every dataset') }) } }, async () => ({
    datasets: (await engine.store.listDatasets()).map((d) => datasetView(d)),
  }));

  app.put<{ Params: NameParams; Body: { ingest_pipeline?: string } }>(
    '/api/datasets/:name',
    { config: { role: 'admin' }, schema: { tags, operationId: 'putDataset', summary: 'Create a dataset or set its ingest pipeline', params: datasetParams, body: datasetBody, response: apiResponses({ 200: ok(datasetSchema, 'The dataset, updated'), 201: ok(datasetSchema, 'The dataset, created') }, 400, 404, 409, 413, 415) } },
    async (request, reply) => {
      const existed = (await engine.store.getDataset(request.params.name)) !== undefined;
      const dataset = await putDataset(engine, request.params.name, { ingestPipeline: request.body?.ingest_pipeline });
      return reply.status(existed ? 200 : 201).send(datasetView(dataset));
    },
  );

  app.get<{ Params: NameParams }>('/api/datasets/:name', { schema: { tags, operationId: 'getDataset', summary: 'A dataset with its record count', params: datasetParams, response: apiResponses({ 200: ok(datasetSchema, 'The dataset') }, 400, 404) } }, async (request) => {
    const dataset = await requireDataset(engine, request.params.name);
    return datasetView(dataset, await engine.store.countRecords(dataset.name));
  });

  app.get<{ Params: NameParams; Querystring: { after?: string; limit: number } }>(
    '/api/datasets/:name/records',
    { schema: { tags, operationId: 'listRecords', summary: 'One page of records in id order; pass the last id as `after` for the next', params: datasetParams, querystring: listRecordsQuery, response: apiResponses({ 200: ok(recordPage, 'A page of records with their derived values') }, 400, 404) } },
    async (request) => {
      await requireDataset(engine, request.params.name);
      const records = await engine.store.listRecords(request.params.name, { after: request.query.after, limit: request.query.limit });
      const values = await engine.store.listAttributeValues(request.params.name, records.map((r) => r.id));
      const last = records.length === request.query.limit ? records.at(-1)?.id : undefined;
      return { records: records.map((r) => recordView(r, values.get(r.id) ?? {})), next_after: last ?? null };
    },
  );

  app.put<{ Params: RecordParams; Body: unknown }>(
    '/api/datasets/:name/records/:id',
    { schema: { tags, operationId: 'putRecord', summary: 'Create or replace one record (a JSON object)', params: recordParams, body: recordBody, response: apiResponses({ 200: ok(recordSchema, 'The stored record') }, 400, 404, 413, 415, 422) } },
    async (request) => {
      const { name, id } = request.params;
      if (!isJsonObject(request.body)) throw new SluiceError('RECORD_INVALID', `record "${id}" is not a JSON object`);
      await writeRecords(engine, name, [{ id, data: request.body }]);
      return recordView((await engine.store.getRecord(name, id))!, await engine.store.getAttributeValues(name, id));
    },
  );

  app.get<{ Params: RecordParams }>('/api/datasets/:name/records/:id', { schema: { tags, operationId: 'getRecord', summary: 'A record with its derived values', params: recordParams, response: apiResponses({ 200: ok(recordSchema, 'The record') }, 400, 404) } }, async (request) => {
    const { name, id } = request.params;
    await requireDataset(engine, name);
    const record = await engine.store.getRecord(name, id);
    if (!record) throw new SluiceError('RECORD_NOT_FOUND', `dataset ${name} has no record ${id}`);
    return recordView(record, await engine.store.getAttributeValues(name, id));
  });

  app.post<{ Params: RecordParams & { field: string }; Body: { value: unknown; note?: string } }>(
    '/api/datasets/:name/records/:id/overrides/:field',
    {
      config: { role: 'operator' },
      schema: { tags, operationId: 'overrideValue', summary: 'Set a derived value by hand (status overridden: no run replaces it)', params: valueParams, body: overrideBody, response: apiResponses({ 200: ok(attributeValueSchema, 'The value as stored') }, 400, 404, 413, 415) },
    },
    async (request) => {
      const { name, id, field } = request.params;
      await requireDataset(engine, name);
      const value = await engine.store.overrideAttributeValue(name, id, field, { value: request.body.value, note: request.body.note }, engine.clock.now());
      await attributeTriggersOf(engine)?.valuesChanged(name, field, [id]);
      return attributeValueView(value);
    },
  );

  app.post<{ Params: RecordParams & { field: string }; Body: { note?: string } | undefined }>(
    '/api/datasets/:name/records/:id/approvals/:field',
    { config: { role: 'operator' }, schema: { tags, operationId: 'approveValue', summary: 'Approve a proposed derived value', params: valueParams, body: approveBody, response: apiResponses({ 200: ok(attributeValueSchema, 'The value as stored') }, 400, 404, 409, 413, 415) } },
    async (request) => {
      const { name, id, field } = request.params;
      await requireDataset(engine, name);
      return attributeValueView(await engine.store.approveAttributeValue(name, id, field, request.body?.note, engine.clock.now()));
    },
  );

  app.post<{ Params: NameParams; Body: { force?: boolean } | undefined }>(
    '/api/datasets/:name/runs',
    {
      config: { role: 'operator' },
      schema: { tags, operationId: 'runDataset', summary: "Run every attribute pipeline of the dataset, one after the other in Kahn's order", params: datasetParams, body: datasetRunBody, response: apiResponses({ 202: ok(datasetRunStarted, 'Started: the order of the pipelines and the first run') }, 400, 404, 413, 415) },
    },
    async (request, reply) => {
      const { name } = request.params;
      await requireDataset(engine, name);
      const order = await datasetPipelineOrder(engine, name);
      if (order.length === 0) throw new SluiceError('PIPELINE_NOT_FOUND', `dataset ${name} has no attribute pipeline`);
      let first: (id: string) => void = () => undefined;
      const started = new Promise<string>((resolve) => (first = resolve));
      const chain = runDatasetPipelines(engine, name, { force: request.body?.force === true, onStart: (_p, runId) => first(runId) });
      chain.catch((err: unknown) => request.log.error(err));
      const runId = await Promise.race([started, chain.then(() => null)]);
      return reply.code(202).send({ order, first_run: runId });
    },
  );

  app.delete<{ Params: RecordParams }>('/api/datasets/:name/records/:id', { schema: { tags, operationId: 'deleteRecord', summary: 'Delete a record', params: recordParams, response: apiResponses({ 200: ok(recordDeleted, 'The id of the deleted record') }, 400, 404) } }, async (request) => {
    const { name, id } = request.params;
    await requireDataset(engine, name);
    if (!(await engine.store.deleteRecord(name, id))) throw new SluiceError('RECORD_NOT_FOUND', `dataset ${name} has no record ${id}`);
    return { deleted: id };
  });

  // `::` is Fastify's escape for a literal colon.
  app.post<{ Params: NameParams; Querystring: { id_field: string }; Body: unknown }>(
    '/api/datasets/:name/records::bulk',
    {
      schema: {
        tags,
        operationId: 'writeRecords',
        summary: 'Upsert many records: a JSON array or a JSONL body (application/x-ndjson); all or nothing',
        params: datasetParams,
        querystring: bulkQuery,
        body: recordBody,
        response: apiResponses({ 200: ok(recordsWritten, 'How many records were written') }, 400, 404, 413, 415, 422),
      },
    },
    async (request) => {
      const { body } = request;
      const idField = request.query.id_field;
      let records;
      if (typeof body === 'string') records = recordsFromJsonl(body, idField);
      else if (Array.isArray(body)) records = recordsFromArray(body, idField);
      else throw new SluiceError('REQUEST_INVALID', 'the body must be a JSON array of records or JSONL (one record per line)');
      return { written: await writeRecords(engine, request.params.name, records) };
    },
  );
}
