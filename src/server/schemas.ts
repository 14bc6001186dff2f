import { RUN_STATES } from '../core/model.js';

/**
 * JSON Schemas of the HTTP API: Fastify validates requests with them (unknown body fields are rejected, body
 * types are not coerced) and @fastify/swagger publishes the same objects at /openapi.json. What the API answers
 * is in response-schemas.ts.
 */

const NAME = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', maxLength: 200 } as const;

export const pipelineParams = { type: 'object', required: ['name'], properties: { name: NAME } } as const;
export const runParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const;
export const stepParams = {
  type: 'object',
  required: ['id', 'step'],
  properties: { id: { type: 'string', maxLength: 200 }, step: { type: 'string', maxLength: 200 } },
} as const;
export const eventNameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

/** A run's priority is stored in a 32-bit integer column on both backends. */
export const MIN_PRIORITY = -2_147_483_648;
export const MAX_PRIORITY = 2_147_483_647;
/** The largest epoch milliseconds a JavaScript `Date` holds (year 275760). */
export const MAX_TIME_MS = 8.64e15;

export const startRunBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    input: { description: 'Run input; checked against the pipeline `input` schema.' },
    idempotency_key: { type: 'string', minLength: 1, maxLength: 200, description: 'Returns the existing run when used for this pipeline in the last 24 h with the same request; 409 IDEMPOTENCY_CONFLICT with a different one.' },
    priority: { type: 'integer', minimum: MIN_PRIORITY, maximum: MAX_PRIORITY, description: `Higher is claimed first, an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY} (the stores' 32-bit column). Default: 0.` },
    run_at: {
      type: ['integer', 'string'],
      minimum: -MAX_TIME_MS,
      maximum: MAX_TIME_MS,
      maxLength: 64,
      description: 'Delayed start: epoch ms or an ISO 8601 time, within the range of JavaScript dates (±8.64e15 ms).',
    },
    steps: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Run these steps plus their dependencies only.' },
    force: { type: 'boolean', description: 'Bypass the step cache.' },
  },
} as const;

export const listRunsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pipeline: NAME,
    status: { type: 'string', enum: [...RUN_STATES] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', minLength: 1, maxLength: 500, description: 'The `next_cursor` of the previous page; none for the first (newest) page.' },
  },
} as const;

export const limitQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Only events with a larger id.' },
    limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
  },
} as const;

export const rollbackBody = {
  type: 'object',
  additionalProperties: false,
  required: ['to'],
  properties: { to: { type: 'string', minLength: 1, description: 'Step whose output and descendants are discarded and run again.' } },
} as const;

export const approvalBody = {
  type: 'object',
  additionalProperties: false,
  required: ['decision'],
  properties: {
    decision: { type: 'string', enum: ['approve', 'reject'] },
    comment: { type: 'string', maxLength: 10_000 },
    response: { description: "The reviewer's data, checked against the approval step's `with.response` schema" },
  },
} as const;

export const createTokenBody = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: { role: { type: 'string', enum: ['viewer', 'operator', 'admin'] }, name: { type: 'string', maxLength: 200 } },
} as const;

export const graphQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { format: { type: 'string', enum: ['ascii', 'mermaid', 'dot', 'json'], default: 'json' } },
} as const;

export const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    run: { type: 'string', maxLength: 200 },
    pipeline: NAME,
    after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Replay stored events after this id first (like Last-Event-ID).' },
    token: { type: 'string', description: 'Bearer token, for clients that cannot set headers (EventSource, WebSocket).' },
  },
} as const;

export const simulateBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    inputs: { type: 'array', maxItems: 1000, items: {}, description: 'Sample run inputs.' },
    docs: { type: 'array', maxItems: 1000, items: {}, description: 'Alias of inputs (ingest-pipeline wording).' },
    verbose: { type: 'boolean', default: false, description: 'Include each step\'s resolved input and output.' },
  },
} as const;

export const statsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: ['integer', 'string'], description: 'Window start: epoch ms or an ISO 8601 time. Default: 24 h ago.' },
    buckets: { type: 'integer', minimum: 1, maximum: 500, description: 'Also answer `series`: the window split into this many equal spans up to now (runs by creation time).' },
  },
} as const;

export const eventTriggerQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { idempotency_key: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

/** Body of PUT /api/pipelines/:name and POST .../validate, for the document only (the route validates it itself). */
export const pipelineBodyDoc = {
  description: 'A pipeline definition as JSON, or as YAML with Content-Type application/yaml. `name` defaults to the URL name.',
  type: 'object',
} as const;

export const datasetParams = pipelineParams;
export const recordParams = {
  type: 'object',
  required: ['name', 'id'],
  properties: { name: NAME, id: { type: 'string', minLength: 1, maxLength: 500 } },
} as const;
export const datasetBody = {
  type: 'object',
  additionalProperties: false,
  properties: { ingest_pipeline: { ...NAME, description: 'Pipeline every written record passes through before it is stored.' } },
} as const;
export const valueParams = {
  type: 'object',
  required: ['name', 'id', 'field'],
  properties: { name: NAME, id: recordParams.properties.id, field: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;
export const overrideBody = {
  type: 'object',
  required: ['value'],
  additionalProperties: false,
  properties: {
    value: { description: 'The value (any JSON).' },
    note: { type: 'string', maxLength: 10_000, description: 'Why: kept with the value.' },
  },
} as const;
export const approveBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { note: { type: 'string', maxLength: 10_000 } },
} as const;
export const datasetRunBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { force: { type: 'boolean', default: false, description: 'Recompute every record, whatever its input hash.' } },
} as const;
/** Any JSON object; the route reports a non-object body as RECORD_INVALID. */
export const recordBody = { description: 'The record: a JSON object.' } as const;
export const bulkQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { id_field: { type: 'string', minLength: 1, maxLength: 200, default: 'id', description: 'Field holding each record id.' } },
} as const;
export const listRecordsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', maxLength: 500, description: 'Only records whose id sorts after this one (the last id of the previous page).' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

export const listPipelinesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    summary: { type: 'boolean', default: false, description: "Add each pipeline's newest run (`last_run`), eval counts (`evals`) and mean confidence (`avg_confidence`)." },
    name: { ...NAME, description: 'Only this pipeline (an empty list when there is none).' },
  },
} as const;
